"""OTLP attributes, times and Steward's model/site identity: shared by every signal.

Metrics, spans and log records resolve their identity the same way: a `steward.*`
attribute on the item itself, then the same attribute on the resource, then a
semantic-convention resource attribute, then a default.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from pydantic import ValidationError

from steward.codec import validation_reason

IDENTITY = {  # field: (steward attribute, resource fallback, default)
    "model": ("steward.model", "service.name", None),
    "version": ("steward.model.version", "service.version", "unknown"),
    "site": ("steward.site", "cloud.region", "default"),
    "tier": ("steward.tier", None, "cloud"),
    "node": ("steward.node", "host.name", None),
}
IDENTITY_KEYS = frozenset(key for key, _, _ in IDENTITY.values())
NO_MODEL = "no model: set steward.model or the resource's service.name"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HEX_IDS = ("traceId", "spanId", "parentSpanId")


class Rejected(Exception):
    """An item (data point, span, log record) that cannot become a record, with the
    reason the sender sees."""


def reason_of(exc: Exception) -> str:
    """The sender-facing reason of a `Rejected` or a pydantic `ValidationError`."""
    return validation_reason(exc) if isinstance(exc, ValidationError) else str(exc)


def identity(resource: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """model/version/site/tier/node/service: the item's steward.* keys, then the resource's."""
    out: dict[str, Any] = {}
    for name, (key, fallback, default) in IDENTITY.items():
        found = (item.get(key), resource.get(key), resource.get(fallback) if fallback else None)
        out[name] = next((str(v) for v in found if v not in (None, "")), default)
    service = resource.get("service.name")
    return {**out, "service": None if service is None else str(service)}


def unix_time(unix_nano: int) -> datetime:
    """Aware UTC time, exact to the microsecond (a float of seconds would not be)."""
    return _EPOCH + timedelta(microseconds=unix_nano // 1000)


def attributes(kvs: Iterable[KeyValue]) -> dict[str, Any]:
    """OTLP attributes as flat scalars; arrays, maps and bytes become compact JSON/base64."""
    out: dict[str, Any] = {}
    for kv in kvs:
        value = any_value(kv.value)
        if isinstance(value, list | dict):
            value = json.dumps(value, separators=(",", ":"))
        out[kv.key] = value
    return out


def any_value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None if which is None else getattr(value, which)


def hex_ids(doc: dict[str, Any]) -> dict[str, Any]:
    """A `MessageToDict` span or log record with its ids as OTLP JSON writes them (hex),
    not base64 as protobuf's JSON does: what a dead letter's reader can match to a trace."""
    out = dict(doc)
    for key in _HEX_IDS:
        if key in out:
            out[key] = base64.b64decode(out[key]).hex()
    return out
