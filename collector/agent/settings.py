"""Settings of the edge agent: one frozen object, read from `STEWARD_AGENT_*` variables.

The agent has its own prefix (not nested under `STEWARD_`) because it runs on edge
boxes where no other Steward deployable lives: `STEWARD_AGENT_COLLECTOR_URL`,
`STEWARD_AGENT_TOKEN`, `STEWARD_AGENT_SPOOL_DIR`, ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings

from steward.codec import validation_reason
from steward.errors import ConfigError
from steward.settings import env_config

FullPolicy = Literal["drop-oldest", "refuse-newest"]
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"})


def _http_base_url(value: str, what: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL")
    if parts.path.strip("/") or parts.query:
        raise ValueError(f"{value!r}: give the {what}'s base URL, without a path")
    return value.rstrip("/")


class ProfileSettings(BaseModel):
    """Profile mode (`STEWARD_AGENT_PROFILES__*`): on a thin link, send one feature profile
    per (model, version, site) window instead of every record's features."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = False
    api_url: str | None = None
    """Steward API base URL, where the profile spec of each model version comes from."""
    window_s: int = Field(300, ge=1, le=86_400)
    """Epoch-aligned tumbling windows; must equal the drift judge's `window_s`."""
    grace_s: float = Field(30.0, ge=0)
    """A window closes once event time or the wall clock passes its end plus this."""
    columns_raw: bool = False
    """Also forward the profiled records whole (off: profiles replace them on the link)."""
    spec_ttl_s: float = Field(3600.0, gt=0)
    """A cached spec is fetched again after this long (the reference may be replaced)."""
    spec_retry_s: float = Field(60.0, gt=0)
    """Wait before asking again for a spec the API did not give."""
    max_pending_bytes: int = Field(256 * 1024 ** 2, ge=1024)
    """Bound on records waiting for their window to close (503 to local clients above)."""
    tick_s: float = Field(1.0, gt=0)

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_base_url(value, "API")

    @model_validator(mode="after")
    def _needs_api(self) -> ProfileSettings:
        if self.enabled and not self.api_url:
            raise ValueError("profiles.enabled needs profiles.api_url (the Steward API)")
        return self


class AgentSettings(BaseSettings):
    """Everything the agent reads from its environment, checked once at start."""

    model_config = {**env_config(), "env_prefix": "STEWARD_AGENT_"}

    collector_url: str
    """Base URL of the collector, e.g. https://steward.example.com:4318 (no path)."""
    token: SecretStr | None = None
    """Sent as `Authorization: Bearer <token>`; never logged. Give it the ingest scope (and
    in profile mode the API accepts it for the profile spec, which needs the same)."""
    ca_bundle: Path | None = None
    """PEM CA bundle the collector's (and API's) HTTPS certificate is checked against, for
    a private CA or a self-signed certificate; unset: the system's trust store."""
    host: str = "127.0.0.1"
    port: int = Field(4318, ge=0, le=65535)
    """4318 is where OpenTelemetry SDKs export by default, so they need no configuration."""
    spool_dir: Path = Path("data/agent")
    max_spool_bytes: int = Field(1024 ** 3, ge=1024)
    """Bound on the payload bytes waiting in the spool (the file adds SQLite overhead)."""
    full_policy: FullPolicy = "drop-oldest"
    max_dead_bytes: int = Field(64 * 1024 ** 2, ge=1024)
    """Bound on the entries the collector refused for good (oldest pruned, counted)."""
    max_body_bytes: int = Field(16 * 1024 ** 2, ge=1024)
    """Largest local request body, after decompression (413 above); as the collector's."""
    max_batch_bytes: int = Field(4 * 1024 ** 2, ge=1024)
    """Largest upstream request before compression (a single larger entry goes alone)."""
    max_batch_records: int = Field(5000, ge=1)
    backoff_base_s: float = Field(0.5, gt=0)
    backoff_cap_s: float = Field(60.0, gt=0)
    """Longest jittered wait between failed attempts; also the wait after 401/403/404."""
    max_retry_after_s: float = Field(600.0, gt=0)
    """A collector's Retry-After is honoured up to this many seconds."""
    request_timeout_s: float = Field(30.0, gt=0)
    retry_after_s: float = Field(5.0, gt=0)
    """Retry-After given to local clients when the spool refuses data (refuse-newest)."""
    sample_rate: float = Field(1.0, gt=0, le=1)
    """Share of JSON inference records kept (by record id); each kept record's sample_rate
    is scaled by it, so downstream counts stay unbiased. 1 keeps everything."""
    profiles: ProfileSettings = ProfileSettings()
    """Profile mode, off by default (see `ProfileSettings`)."""

    @field_validator("collector_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _http_base_url(value, "collector")

    @model_validator(mode="after")
    def _not_itself(self) -> AgentSettings:
        """Forwarding to our own listen address would loop the spool into itself."""
        parts = urlsplit(self.collector_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if port == self.port and parts.hostname in _LOOPBACK | {self.host}:
            raise ValueError(f"collector_url {self.collector_url} is the agent's own "
                             f"address ({self.host}:{self.port})")
        return self


def load(token_file: Path | None = None, **overrides: Any) -> AgentSettings:
    """Settings from the environment plus `overrides`; a bad value is a `ConfigError`.

    `token_file` (e.g. a mounted secret) keeps the token off the command line, where
    any user of the box could read it in the process list.
    """
    if token_file is not None:
        try:
            overrides["token"] = token_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the token file {token_file}: {exc.strerror}") from None
    try:
        return AgentSettings(**overrides)
    except ValidationError as exc:
        raise ConfigError(f"agent settings: {validation_reason(exc)}") from None
