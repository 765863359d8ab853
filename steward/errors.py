"""One exception root for Steward; errors carry data, not just text.

Handlers turn these into HTTP answers (`status`, `retry_after`) or dead-letter
records (`reason`), so the data on the exception is what users see.
"""

from __future__ import annotations


class StewardError(Exception):
    """Root of every error Steward raises on purpose."""

    status: int = 500
    code: str = "internal"
    """Machine-readable kind of error (HTTP answers carry it beside the reason); a raise
    site may name a narrower one, e.g. `site_not_allowed` for a 403."""

    def __init__(self, reason: str, *, retry_after: float | None = None,
                 code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        if code is not None:
            self.code = code

    def body(self) -> dict[str, str]:
        """The JSON body of an HTTP answer: `{"detail": reason, "code": code}`."""
        return {"detail": self.reason, "code": self.code}


class InvalidInput(StewardError):
    """Input that can never be accepted as it is (bad bytes, bad schema)."""

    status = 400
    code = "invalid_input"


class NotFound(StewardError):
    """The thing asked for does not exist."""

    status = 404
    code = "not_found"


class PayloadTooLarge(InvalidInput):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(InvalidInput):
    status = 415
    code = "unsupported_media_type"


class Unauthorized(StewardError):
    """No credentials, or credentials nobody issued."""

    status = 401
    code = "unauthorized"


class Forbidden(StewardError):
    """Valid credentials that do not allow this (scope, or a site the token is not bound to)."""

    status = 403
    code = "forbidden"


class Unavailable(StewardError):
    """A dependency (the broker, the store) cannot take work now; retry later."""

    status = 503
    code = "unavailable"


class Backpressure(Unavailable):
    """The broker is slow: the client should slow down and retry."""

    status = 429
    code = "backpressure"


class ConfigError(StewardError):
    """Settings or config files that cannot be used."""

    code = "config_error"
