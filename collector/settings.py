"""Settings of the collector deployable."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from steward.auth import TokenSpec
from steward.settings import KafkaSettings, env_config
from steward.tls import ServerTls


class CollectorSettings(BaseSettings):
    model_config = env_config()

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    host: str = "127.0.0.1"
    port: int = Field(4318, ge=0, le=65535)
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    """Largest request body accepted, measured after decompression (413 above)."""
    max_records_per_message: int = Field(2000, ge=1)
    retry_after_s: float = Field(5.0, gt=0)
    tokens: list[TokenSpec] = Field(default_factory=list)
    """Ingest tokens (hashed), e.g. from `steward token new`; none configured = auth off."""
    tls: ServerTls = Field(default_factory=ServerTls)
    """HTTPS when a certificate and key are set (STEWARD_TLS__CERTFILE, __KEYFILE)."""
