"""What processors and sinks are, as the shared runner sees them. No Kafka here.

A processor is a pure step over one partition's state: `(state, record) ->
(state, emits)`, plus a `tick` that lets time close windows when traffic stops.
Tests drive it with lists; the runner drives it with Kafka. A sink writes a
batch of events somewhere durable and raises if it could not.

State lives in memory. A processor that keeps records in open windows says, with
`hold`, the lowest offset per topic it still needs; the runner never commits past
it, so after a crash the replay from the committed offset rebuilds those windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel

from steward.topics import Topic

S = TypeVar("S")


class Source(NamedTuple):
    """Where an input came from: enough to find it again, and to dead-letter it. (A named
    tuple: the runner makes one per record, and a frozen dataclass costs ~4x as much.)"""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    index: int | None = None


@dataclass(frozen=True)
class Emit:
    """What a processor wants on `topic`: a CloudEvent (event topics) or a record with its
    key (batch topics). The runner produces it before committing."""

    topic: Topic
    event: CloudEvent | None = None
    record: BaseModel | None = None
    key: str | None = None


class Processor(Protocol, Generic[S]):
    """A pure stream step. State is per input partition; it must not be mutated by a
    step that then raises (validate first, then change)."""

    name: str
    inputs: tuple[Topic, ...]

    def initial_state(self) -> S: ...

    def step(self, state: S, record: Any, now: datetime,
             src: Source) -> tuple[S, list[Emit]]: ...

    def tick(self, state: S, now: datetime) -> tuple[S, list[Emit]]: ...

    # Optional, for throughput (the runner uses them when a stage has them):
    # `step_run(state, records, now, src)`: `step` over all records of one Kafka message
    #   (`src` is any of them) with the same state and emits as record by record; it must
    #   refuse before changing state (the runner then goes record by record).
    # `accepts(topic, key) -> bool`: False for a message key (model/site) that holds nothing
    #   the stage uses; such messages are not decoded at all.

    def hold(self, state: S) -> dict[str, int]:
        """Per topic, the lowest offset that open state still needs ({}: none)."""
        ...


class Sink(Protocol):
    """Stores decoded events; `write` is atomic and idempotent (by event id)."""

    name: str
    inputs: tuple[Topic, ...]

    def write(self, events: Sequence[tuple[CloudEvent, Source]]) -> None: ...


def run_steps(
    processor: Processor[S], records: Sequence[Any], now: datetime, state: S | None = None
) -> tuple[S, list[Emit]]:
    """Fold `records` through `processor` (then one tick): the list-in, list-out harness."""
    st = processor.initial_state() if state is None else state
    out: list[Emit] = []
    for offset, record in enumerate(records):
        st, emits = processor.step(st, record, now, Source("list", 0, offset))
        out.extend(emits)
    st, emits = processor.tick(st, now)
    out.extend(emits)
    return st, out
