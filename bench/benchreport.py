"""The ending the benchmark scripts share: stamp the result with the machine's load and
the time (the machine is shared: a figure means little without them), print the table,
and write the JSON when asked."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def report(
    result: dict[str, Any], table: Callable[[dict[str, Any]], str], out: Path | None
) -> None:
    result["load_average"] = os.getloadavg()
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(table(result))
    print(f"load average {result['load_average']}, {result['date']}")
    if out:
        out.write_text(json.dumps(result, indent=2))
