"""Vectors as sqlite-vec reads them: little-endian float32 bytes.

The same bytes as ``sqlite_vec.serialize_float32``, without importing the ``sqlite_vec``
package, which imports numpy (~15 MB of RSS) for helpers Nexflow does not use.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence


def float32_blob(vector: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(vector)}f", *vector)
