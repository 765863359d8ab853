"""The one contract: every record that enters and every event that leaves Steward."""

from steward.schema.events import (
    EventType,
    LatencyStats,
    ModelRolledBack,
    Window,
    event_id,
    from_kafka,
    make_event,
    to_json,
    to_kafka,
)
from steward.schema.profile import CategoricalProfile, FeatureProfile, NumericProfile
from steward.schema.records import (
    DeadLetter,
    GpuSample,
    Histogram,
    InferenceRecord,
    MetricPoint,
    key_of,
)

__all__ = [
    "CategoricalProfile",
    "DeadLetter",
    "EventType",
    "FeatureProfile",
    "GpuSample",
    "Histogram",
    "InferenceRecord",
    "LatencyStats",
    "MetricPoint",
    "ModelRolledBack",
    "NumericProfile",
    "Window",
    "event_id",
    "from_kafka",
    "key_of",
    "make_event",
    "to_json",
    "to_kafka",
]
