"""The outbound webhook connector: replies and notifications POSTed, signed, to one URL.
``manifest`` and ``config`` are dependency-free; ``connector`` imports aiohttp and is
loaded only when ``connectors.webhook`` is configured."""
