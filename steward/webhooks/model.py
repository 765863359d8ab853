"""Subscriptions as the API takes and gives them, and the rules both sides share.

Inputs and outputs are separate models: what a caller may set (`SubscriptionIn`) is not
what the API answers (`SubscriptionOut`), and only two answers ever carry a secret: the
one to `POST /webhooks` (shown once) and the delivery service's internal view. Secrets
are `SecretStr`, so a repr or a log line shows stars; they are revealed only when such a
model is serialised to JSON for that answer.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer, field_validator

Format = Literal["cloudevents", "alertmanager"]
State = Literal["active", "disabled"]
Outcome = Literal["delivered", "retrying", "dead", "gone"]

SECRET_PREFIX = "whsec_"
DELIVERY_NS = uuid.UUID("3f8e2a61-0c4d-4e7b-9a51-6d2b8c1f7e90")
"""Namespace of webhook-ids. Never change it: receivers dedup by these ids."""


def new_secret() -> str:
    """A fresh signing secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def check_secret(value: str) -> str:
    """`whsec_` + base64 of 24 to 64 bytes, as the Standard Webhooks libraries expect."""
    if not value.startswith(SECRET_PREFIX):
        raise ValueError("a secret is 'whsec_' followed by base64")
    try:
        raw = base64.b64decode(value[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the part after 'whsec_' is not base64") from None
    if not 24 <= len(raw) <= 64:
        raise ValueError("a secret holds 24 to 64 bytes")
    return value


def matches(patterns: tuple[str, ...] | list[str], event_type: str) -> bool:
    """Exact CloudEvent types, `prefix.*` (any type below the prefix) or `*` (all)."""
    for p in patterns:
        if p == "*" or p == event_type:
            return True
        if p.endswith(".*") and event_type.startswith(p[:-1]):
            return True
    return False


def delivery_id(event_source: str, event_id: str, subscription_id: str) -> str:
    """The stable `webhook-id`: the same event to the same subscription always has the same
    id, across retries, restarts, replays and Kafka redelivery, so receivers can dedup."""
    return "msg_" + uuid.uuid5(DELIVERY_NS, f"{event_source}|{event_id}|{subscription_id}").hex


class SubscriptionIn(BaseModel):
    """What `POST /webhooks` takes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(min_length=8, max_length=2000, description="http(s) URL to POST to")
    event_types: list[str] = Field(
        min_length=1, max_length=100,
        description="exact CloudEvent types, 'prefix.*' (e.g. 'steward.gpu.*') or '*'")
    secret: SecretStr | None = Field(
        None, description="'whsec_' + base64 (24-64 bytes); generated when absent")
    format: Format = Field("cloudevents", description="cloudevents: the CloudEvent in "
                           "structured JSON; alertmanager: Alertmanager webhook JSON")
    description: str = Field("", max_length=500)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an http(s) URL with a host")
        return value

    @field_validator("event_types")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for p in value:
            if not p or len(p) > 200 or not all(c.isalnum() or c in "._-*" for c in p) \
                    or ("*" in p and p != "*" and (not p.endswith(".*") or p.count("*") > 1)):
                raise ValueError(f"{p!r}: give a CloudEvent type, 'prefix.*' or '*'")
        return value

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_secret(value.get_secret_value())
        return value


class LastDelivery(BaseModel):
    """The latest attempt the delivery service reported for a subscription."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    webhook_id: str = Field(max_length=200)
    event_id: str = Field(max_length=200)
    event_type: str = Field(max_length=200)
    outcome: Outcome
    status_code: int | None = None
    error: str | None = Field(None, max_length=1000)
    attempts: int = Field(ge=0)
    at: datetime


class DisableIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


class SubscriptionOut(BaseModel):
    """A subscription as the API shows it: never its secret."""

    model_config = ConfigDict(frozen=True)

    id: str
    url: str
    event_types: list[str]
    format: Format
    description: str
    state: State
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    revision: int = Field(description="bumped by every disable and enable")
    created_at: datetime
    last_delivery: LastDelivery | None = None


class _WithSecret(SubscriptionOut):
    secret: SecretStr

    @field_serializer("secret", when_used="json")
    def _reveal(self, value: SecretStr) -> str:
        return value.get_secret_value()


class SubscriptionCreated(_WithSecret):
    """The answer to `POST /webhooks`: the only time a caller sees the secret."""


class Subscription(_WithSecret):
    """The delivery service's view (internal route, admin token): with the secret it signs
    with. Kept in memory only, repr shows stars."""


class SubscriptionList(BaseModel):
    model_config = ConfigDict(frozen=True)

    subscriptions: list[SubscriptionOut]


class DeliveryView(BaseModel):
    model_config = ConfigDict(frozen=True)

    subscriptions: list[Subscription]
