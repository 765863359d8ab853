"""The sinks: events and inference records from Kafka into the store, as stages of the
shared runner."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from cloudevents.core.v1.event import CloudEvent

from api.references import ReferenceCapture
from api.store import EventRow, Store
from steward import topics as T
from steward.schema import InferenceRecord, to_json
from steward.stream import Source

log = logging.getLogger(__name__)


def row_of(event: CloudEvent, src: Source) -> EventRow:
    """What the store keeps of one event: attributes for filtering plus the whole event."""
    data = event.get_data()
    data = data if isinstance(data, dict) else {}
    time = event.get_time()
    return EventRow(
        id=event.get_id(), source=event.get_source(), type=event.get_type(),
        subject=event.get_subject(), time=time if isinstance(time, datetime) else None,
        model=data.get("model"), site=data.get("site"), event=to_json(event),
        topic=src.topic, kafka_partition=src.partition, kafka_offset=src.offset,
    )


class EventSink:
    """Stores every event of the event topics once (by source and id)."""

    name = "sink"
    inputs = T.EVENTS

    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, events: Sequence[tuple[CloudEvent, Source]]) -> None:
        self.store.insert_events([row_of(ev, src) for ev, src in events])


class InferenceSink:
    """Stores every inference record once (by record id): the telemetry behind verdicts."""

    name = "telemetry-sink"
    inputs = (T.INFERENCE,)

    def __init__(self, store: Store, capture: ReferenceCapture | None = None) -> None:
        self.store = store
        self.capture = capture

    def write(self, records: Sequence[tuple[InferenceRecord, Source]]) -> None:
        self.store.insert_inferences([(r, src.partition, src.offset) for r, src in records])
        if self.capture is not None:
            for ref in self.capture.after_insert({(r.model, r.version) for r, _ in records}):
                log.info("captured the reference of %s %s from its first %d records",
                         ref.model, ref.version, len(ref.rows))
