"""The web connector: the browser chat page and delivery to WebSocket clients."""
