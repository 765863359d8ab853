"""Kafka messages in and out of the runner: decoding by payload kind, dead letters, and
grouping a batch's items by the message they came in."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from steward import topics as T
from steward.bus.producer import Out
from steward.codec import JSON_HEADERS, Decoded, Rejected, decode_batch, decode_event
from steward.schema import DeadLetter
from steward.stream import Source


def dead_letter(stage: str, rej: Rejected, src: Source | None, prefix: str, now: datetime) -> Out:
    """The dead-letter message for one rejected input."""
    record = DeadLetter(
        ts=now, stage=stage, reason=rej.reason[:2000], error_type=rej.error_type,
        topic=src.topic if src else None, partition=src.partition if src else None,
        offset=src.offset if src else None,
        key=src.key.decode("utf-8", "replace") if src and src.key else None,
        record_index=rej.index, payload_b64=base64.b64encode(rej.raw).decode(),
    )
    key = (src.topic if src else stage).encode()
    value = record.model_dump_json(by_alias=True).encode()
    return Out(T.DEADLETTER.full(prefix), key, value, JSON_HEADERS)


def decode(msg: Any, topic: T.Topic) -> Decoded:
    """Decode one consumed message according to its topic's payload kind."""
    if topic.payload == "batch" and topic.record is not None:
        return decode_batch(msg.value, topic.record)
    if topic.payload == "cloudevent":
        return decode_event(msg.key, msg.value, list(msg.headers or []))
    return Decoded(rejected=[Rejected(f"{topic.name} is not an input topic", "topic", b"")])


def by_message(items: Sequence[tuple[Any, Source]]) -> list[list[tuple[Any, Source]]]:
    """Consecutive items of one Kafka message (same topic and offset), in order."""
    groups: list[list[tuple[Any, Source]]] = []
    for item in items:
        src = item[1]
        if groups and groups[-1][0][1].offset == src.offset \
                and groups[-1][0][1].topic == src.topic:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups
