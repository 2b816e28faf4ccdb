"""Cost per call: USD per input and output token, by model name.

The prices come from litellm's price map (data, MIT). litellm is an optional extra, so
Nexflow keeps the two prices per model in ``prices.json`` beside this module
(``scripts/update_prices.py`` regenerates it); when litellm is installed its own, possibly
newer, map is read instead. Either file is parsed once, on the first lookup.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

LITELLM_PRICE_FILE = "model_prices_and_context_window_backup.json"
OWN_PRICE_FILE = Path(__file__).with_name("prices.json")


def litellm_price_file() -> Path | None:
    """litellm's price map, when litellm is installed (it is not imported)."""
    spec = importlib.util.find_spec("litellm")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / LITELLM_PRICE_FILE
        if path.is_file():
            return path
    return None


def read_price_map(path: Path) -> dict[str, tuple[float, float]]:
    """``{model: (input, output)}`` from litellm's map or Nexflow's own ``prices.json``."""
    prices: dict[str, tuple[float, float]] = {}
    for name, info in json.loads(path.read_text(encoding="utf-8")).items():
        if isinstance(info, list) and len(info) == 2:  # prices.json: [input, output]
            prices[name] = (float(info[0]), float(info[1]))
        elif isinstance(info, dict) and "input_cost_per_token" in info:
            prices[name] = (
                float(info.get("input_cost_per_token") or 0.0),
                float(info.get("output_cost_per_token") or 0.0),
            )
    return prices


class PriceMap:
    """``cost(model, tokens_in, tokens_out)`` in USD; 0.0 for models it does not know."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._prices: dict[str, tuple[float, float]] | None = None

    def _load(self) -> dict[str, tuple[float, float]]:
        path = self._path or litellm_price_file() or OWN_PRICE_FILE
        return read_price_map(path) if path.is_file() else {}

    def cost(self, model: str, tokens_in: int, tokens_out: int) -> float:
        if self._prices is None:
            self._prices = self._load()
        price = self._prices.get(model) or self._prices.get(model.split("/", 1)[-1])
        if price is None:
            return 0.0
        return tokens_in * price[0] + tokens_out * price[1]
