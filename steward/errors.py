"""One exception root for Steward; errors carry data, not just text.

Handlers turn these into HTTP answers (`status`, `retry_after`) or dead-letter
records (`reason`), so the data on the exception is what users see.
"""

from __future__ import annotations


class StewardError(Exception):
    """Root of every error Steward raises on purpose."""

    status: int = 500

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class InvalidInput(StewardError):
    """Input that can never be accepted as it is (bad bytes, bad schema)."""

    status = 400


class NotFound(StewardError):
    """The thing asked for does not exist."""

    status = 404


class PayloadTooLarge(InvalidInput):
    status = 413


class UnsupportedMediaType(InvalidInput):
    status = 415


class Unauthorized(StewardError):
    """No credentials, or credentials nobody issued."""

    status = 401


class Forbidden(StewardError):
    """Valid credentials that do not allow this (scope, or a site the token is not bound to)."""

    status = 403


class Unavailable(StewardError):
    """A dependency (the broker, the store) cannot take work now; retry later."""

    status = 503


class Backpressure(Unavailable):
    """The broker is slow: the client should slow down and retry."""

    status = 429


class ConfigError(StewardError):
    """Settings or config files that cannot be used."""
