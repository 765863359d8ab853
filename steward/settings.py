"""Settings shared by every deployable. Each deployable has one frozen settings
object (pydantic-settings, env prefix `STEWARD_`), built in its `main` and passed down.

Nested fields use `__`: `STEWARD_KAFKA__BOOTSTRAP_SERVERS=kafka:9092`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import SettingsConfigDict


class KafkaSettings(BaseModel):
    """How to reach Kafka. Timeouts default small so consumer groups join in seconds."""

    model_config = ConfigDict(frozen=True)

    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = Field("", pattern=r"^[A-Za-z0-9._-]*$")
    client_id: str = "steward"
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 1000
    max_poll_interval_ms: int = 30000
    request_timeout_ms: int = 15000
    linger_ms: int = 5
    ack_timeout_s: float = 10.0
    replication_factor: int = Field(1, ge=1)
    """Replication of the topics Steward creates: 3 on a production cluster."""
    max_message_bytes: int = Field(900_000, ge=10_000)
    """Largest message Steward produces; below Kafka's default 1 MiB limits with headroom."""
    compression: Literal["none", "gzip", "lz4", "zstd"] = "lz4"
    """Producer compression. JSON batches shrink ~5x with lz4 for little CPU, and the
    embedded broker and the network move bytes: "none" only to compare."""
    create_topics: bool = True
    """Create missing topics at start (off where an operator manages topics and ACLs)."""

    def servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]


def env_config(**extra: object) -> SettingsConfigDict:
    """The settings config every deployable uses: `STEWARD_` prefix, `__` nesting, frozen.
    A refused value is never echoed in the error: it may be a secret (a raw token pasted
    where its digest belongs), and the error ends up in the start-up log."""
    return SettingsConfigDict(
        env_prefix="STEWARD_", env_nested_delimiter="__", frozen=True, extra="ignore",
        hide_input_in_errors=True, **extra
    )
