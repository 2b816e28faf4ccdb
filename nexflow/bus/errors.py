"""Why an inbound event was refused. ``status`` is the HTTP status the web API uses."""

from __future__ import annotations


class Rejected(Exception):
    status = 400
    reason = "rejected"

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class NotAllowed(Rejected):
    status = 403
    reason = "not_allowed"


class RateLimited(Rejected):
    status = 429
    reason = "rate_limited"

    def __init__(self, user_message: str, retry_after_s: float) -> None:
        super().__init__(user_message)
        self.retry_after_s = retry_after_s


class Overloaded(Rejected):
    status = 503
    reason = "overloaded"


class UnknownSession(Rejected):
    status = 404
    reason = "unknown_session"


class InvalidMessage(Rejected):
    status = 422
    reason = "invalid_message"
