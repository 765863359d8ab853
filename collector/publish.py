"""From accepted records to acknowledged Kafka messages.

Records are grouped by key (model/site) and packed many to a message (bounded
in records and in bytes, under Kafka's message size limit); the
call returns only when Kafka acknowledged every message (acks=all), so the
collector's 200 means "durably in Kafka". Rejected inputs go to the dead-letter
topic in the same call: nothing the collector refuses is lost.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from pydantic import BaseModel

from steward import topics as T
from steward.bus.producer import Out, Producer
from steward.codec import JSON_HEADERS, pack_batches
from steward.errors import PayloadTooLarge
from steward.schema import DeadLetter, key_of


class Publisher:
    def __init__(self, producer: Producer, prefix: str, max_per_message: int,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 max_message_bytes: int = 900_000) -> None:
        self.producer = producer
        self.prefix = prefix
        self.max_per_message = max_per_message
        self.max_message_bytes = max_message_bytes
        self.clock = clock

    def messages(self, topic: T.Topic, records: Sequence[BaseModel]) -> list[Out]:
        """Batch messages for `records`, one key per message, at most `max_per_message` each."""
        groups: dict[str, list[BaseModel]] = defaultdict(list)
        for r in records:
            groups[key_of(r)].append(r)  # type: ignore[arg-type]
        outs = []
        for key, group in groups.items():
            for value in pack_batches(group, self.max_per_message, self.max_message_bytes):
                if len(value) > self.max_message_bytes:
                    raise PayloadTooLarge(
                        f"a record of {len(value)} bytes for {key} exceeds the "
                        f"{self.max_message_bytes}-byte Kafka message limit")
                outs.append(Out(topic.full(self.prefix), key.encode(), value, JSON_HEADERS))
        return outs

    def dead_letters(self, stage: str,
                     rejected: Sequence[tuple[int | None, str, bytes]]) -> list[Out]:
        now = self.clock()
        outs = []
        for index, reason, raw in rejected:
            record = DeadLetter(ts=now, stage=stage, reason=reason[:2000], error_type="schema",
                                record_index=index, payload_b64=base64.b64encode(raw).decode())
            outs.append(Out(T.DEADLETTER.full(self.prefix), stage.encode(),
                            record.model_dump_json(by_alias=True).encode(), JSON_HEADERS))
        return outs

    def publish(self, outs: Sequence[Out]) -> None:
        """Send and wait for every ack; raises `Backpressure`/`Unavailable` otherwise."""
        self.producer.send_all(outs)
