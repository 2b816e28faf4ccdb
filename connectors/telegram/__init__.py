"""The Telegram connector (aiogram 3). ``manifest`` is dependency-free; ``connector``
imports aiogram and is loaded only when ``connectors.telegram`` is configured."""
