"""Regenerate nexflow/llm/prices.json from an installed litellm's price map.

Nexflow reads the prices per token of chat, completion and embedding models to count the
cost of a call (nexflow/llm/prices.py). litellm carries the map (MIT-licensed data, about
3 MB with everything else it knows of a model) but is an optional extra, so the two prices
per model are kept in a small file of Nexflow's own:

    .venv/bin/pip install 'nexflow[litellm]' && .venv/bin/python scripts/update_prices.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nexflow.llm.prices import LITELLM_PRICE_FILE, litellm_price_file, read_price_map

OUT = Path(__file__).resolve().parent.parent / "nexflow" / "llm" / "prices.json"


def main() -> int:
    source = litellm_price_file()
    if source is None:
        print(f"litellm is not installed (its {LITELLM_PRICE_FILE} is the source)", file=sys.stderr)
        return 1
    prices = read_price_map(source)
    body: dict[str, object] = {
        "_source": f"litellm {LITELLM_PRICE_FILE}, USD per token: [input, output]"
    }
    body.update({name: list(pair) for name, pair in sorted(prices.items())})
    OUT.write_text(json.dumps(body, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{len(prices)} models → {OUT} ({OUT.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
