"""Settings of the webhook delivery deployable (`steward webhooks run`).

Shared settings keep their usual names (`STEWARD_KAFKA__*`, `STEWARD_API_URL`,
`STEWARD_DATA_DIR`), so `steward up` configures it like every other service; what is
the delivery service's own is nested: `STEWARD_WEBHOOKS__MAX_ATTEMPTS=12`,
`STEWARD_WEBHOOKS__ADMIN_TOKEN=...`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings

from steward.settings import KafkaSettings, env_config


class DeliveryOptions(BaseModel):
    """How deliveries are tried. The defaults retry for about a day: 15 attempts, waits
    doubling from 5 s to at most an hour (each with jitter), then the dead-letter state."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    admin_token: SecretStr | None = None
    """A token with the admin scope: reads subscriptions with their secrets, disables
    endpoints that answered 410, reports results. None: the API has auth off."""
    outbox_file: str = Field("webhooks.sqlite3", pattern=r"^[A-Za-z0-9._-]+$")
    """The outbox, in `data_dir`: this service's own file (the API owns the DuckDB one)."""
    backoff_base_s: float = Field(5.0, gt=0)
    backoff_max_s: float = Field(3600.0, gt=0)
    max_attempts: int = Field(15, ge=1)
    max_age_s: float = Field(86_400.0, gt=0)
    """A delivery still failing this long after it was queued goes to the dead letters."""
    timeout_s: float = Field(10.0, gt=0)
    """Per attempt, connect and read; a timeout counts as a failed attempt."""
    max_retry_after_s: float = Field(3600.0, ge=0)
    """A receiver's Retry-After (429/503) is honoured up to this many seconds."""
    workers: int = Field(4, ge=1, le=64)
    """Endpoints delivered to at once (one subscription's deliveries go one at a time)."""
    batch: int = Field(200, ge=1)
    poll_s: float = Field(1.0, gt=0)
    """Longest sleep between looks at the outbox (a new enqueue wakes it at once)."""
    cache_ttl_s: float = Field(5.0, gt=0)
    """Subscriptions are fetched from the API again after this long."""
    max_stale_s: float = Field(300.0, gt=0)
    """While the API is down, a cached copy up to this old is used."""
    retention_s: float = Field(7 * 86_400.0, gt=0)
    """Delivered rows are kept this long (their ids dedup Kafka redelivery), then pruned."""
    external_url: str = ""
    """`externalURL`/`generatorURL` in Alertmanager payloads, e.g. the API's public URL."""


class WebhookSettings(BaseSettings):
    model_config = env_config()

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    api_url: str = "http://127.0.0.1:8080"
    data_dir: Path = Path("data")
    webhooks_group: str = "steward-webhooks"
    """Consumer group over the actions and alerts topics (STEWARD_WEBHOOKS_GROUP)."""
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(0, ge=0, le=65535)
    """Serve Prometheus metrics on this port (0: off)."""
    webhooks: DeliveryOptions = Field(default_factory=DeliveryOptions)

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / self.webhooks.outbox_file
