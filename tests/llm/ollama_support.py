"""What the Ollama tests share: a tool schema and an address where nothing listens."""

from typing import Any

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "the current time",
            "parameters": {"type": "object", "properties": {}},
        },
    }
]
DOWN = "http://127.0.0.1:9"  # the discard port: nothing listens
