"""Cost per call from litellm's bundled price map, read as data (litellm is not imported).

The JSON file ships inside the litellm package; it is parsed once, on the first lookup,
and only the two prices per model are kept.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

PRICE_FILE = "model_prices_and_context_window_backup.json"


def _price_file() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / PRICE_FILE
        if path.is_file():
            return path
    return None


class PriceMap:
    """``cost(model, tokens_in, tokens_out)`` in USD; 0.0 for models it does not know."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._prices: dict[str, tuple[float, float]] | None = None

    def _load(self) -> dict[str, tuple[float, float]]:
        path = self._path or _price_file()
        prices: dict[str, tuple[float, float]] = {}
        if path is not None:
            for name, info in json.loads(path.read_text(encoding="utf-8")).items():
                if isinstance(info, dict) and "input_cost_per_token" in info:
                    prices[name] = (
                        float(info.get("input_cost_per_token") or 0.0),
                        float(info.get("output_cost_per_token") or 0.0),
                    )
        return prices

    def cost(self, model: str, tokens_in: int, tokens_out: int) -> float:
        if self._prices is None:
            self._prices = self._load()
        price = self._prices.get(model) or self._prices.get(model.split("/", 1)[-1])
        if price is None:
            return 0.0
        return tokens_in * price[0] + tokens_out * price[1]
