"""sqlite-vec is loaded from its extension file, without the ``sqlite_vec`` package's
numpy import (regression: importing it added ~15 MB to the idle gateway's RSS)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlite_vec

from nexflow.memory.vecblob import float32_blob

PROBE = """
import sys
from pathlib import Path
from nexflow.memory.store import MemoryIndex
index = MemoryIndex(Path(sys.argv[1]))
print(index.vectors, index._db.execute("SELECT vec_version()").fetchone()[0])
print("numpy" in sys.modules, "sqlite_vec" in sys.modules)
"""


def test_the_index_loads_sqlite_vec_without_numpy(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "memory.db")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split("\n")
    vectors, version = out[0].split()
    assert vectors == "True" and version.startswith("v")
    assert out[1] == "False False"


def test_blobs_are_the_bytes_sqlite_vec_expects() -> None:
    for vector in ([0.0], [0.1, -2.5, 3.0e-8, 1e30], [float(i) / 7 for i in range(384)]):
        assert float32_blob(vector) == sqlite_vec.serialize_float32(vector)
