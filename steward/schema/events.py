"""Events that leave Steward: CloudEvents 1.0 envelopes around versioned, frozen payloads.

Ids are deterministic (UUIDv5 over the event type and the facts that make it
unique), so a redelivered input yields the same event id and every consumer can
drop the duplicate. On Kafka, events travel in binary content mode: attributes in
`ce_*` headers, the payload as the value, the model id as the key.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Literal

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel, Field

from steward.schema.records import Frozen, Name

STEWARD_NS = uuid.UUID("7b0c4a8e-53c1-4f4e-9d55-5be3a1d2c9e1")
"""Namespace of every deterministic event id. Never change it: ids would change."""

_FORMAT = JSONFormat()


class EventType:
    """Every CloudEvent type Steward emits, in one place."""

    MODEL_ROLLED_BACK = "steward.model.rolled_back"
    MODEL_PROMOTED = "steward.model.promoted"
    RETRAIN_REQUESTED = "steward.retrain.requested"
    DATA_QUALITY = "steward.data_quality"
    ACTION_DENIED = "steward.action.denied"
    ALERT = "steward.alert"
    GPU_STARVED = "steward.gpu.partition.starved"
    GPU_OVERSUBSCRIBED = "steward.gpu.partition.oversubscribed"
    GPU_MEMORY_PRESSURE = "steward.gpu.partition.memory_pressure"
    BUDGET_EXCEEDED = "steward.budget.exceeded"
    BUDGET_FORECAST = "steward.budget.forecast_exceeded"
    ROLLOUT_STEP_ADVANCED = "steward.rollout.step_advanced"
    ROLLOUT_PAUSED = "steward.rollout.paused"
    ROLLOUT_STARTED = "steward.rollout.started"
    FLEET_STRAGGLER = "steward.fleet.straggler"


class Window(Frozen):
    """An event-time window [start, end) that a verdict was computed over."""

    start: datetime
    end: datetime
    kind: Literal["tumbling", "sliding"] = "tumbling"


class LatencyStats(Frozen):
    """What one version did in a window."""

    version: Name
    count: int
    p95_ms: float
    method: Literal["samples", "histogram"]


class ModelRolledBack(Frozen):
    """Data of `steward.model.rolled_back`: which canary, where, why, with which parameters."""

    schema_: Literal["steward.model.rolled_back.v1"] = Field(
        "steward.model.rolled_back.v1", alias="schema"
    )
    model: Name
    site: Name
    canary_version: Name
    baseline_version: Name
    check: str
    reason: str
    window: Window
    baseline: LatencyStats
    canary: LatencyStats
    ratio: float
    threshold: float
    min_samples: int
    early: bool = False
    """Judged before the window closed, on the records so far (a canary spec with
    `early`); the counts are those at the decision. Added in v1 without a version bump:
    absent means judged on the closed window."""


def event_id(event_type: str, *facts: object) -> str:
    """Deterministic id: the same facts always give the same id."""
    return str(uuid.uuid5(STEWARD_NS, "|".join([event_type, *map(str, facts)])))


def make_event(
    event_type: str,
    *,
    source: str,
    subject: str,
    data: BaseModel,
    key: str,
    time: datetime,
    facts: tuple[object, ...],
) -> CloudEvent:
    """Build a CloudEvent whose id depends only on `event_type` and `facts`."""
    schema = getattr(data, "schema_", None) or type(data).__name__
    return CloudEvent(
        {
            "id": event_id(event_type, *facts),
            "source": source,
            "type": event_type,
            "subject": subject,
            "time": time,
            "datacontenttype": "application/json",
            "dataschema": f"urn:steward:schema:{schema}",
            "partitionkey": key,
        },
        data.model_dump(mode="json", by_alias=True),
    )


def to_kafka(event: CloudEvent) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """Binary content mode: (key, value, headers) for a Kafka producer."""
    msg = ce_kafka.to_binary(event, _FORMAT)
    key = msg.key.encode() if isinstance(msg.key, str) else msg.key
    return key, msg.value, list(msg.headers.items())


def from_kafka(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> CloudEvent:
    """Parse a binary-mode Kafka message back into a CloudEvent (raises on bad input)."""
    msg = ce_kafka.KafkaMessage(headers=dict(headers), key=key, value=value)
    return ce_kafka.from_binary(msg, _FORMAT)


def to_json(event: CloudEvent) -> dict[str, Any]:
    """The structured-mode JSON form of an event (what `GET /events` returns)."""
    return json.loads(_FORMAT.write(event))
