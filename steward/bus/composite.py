"""Several processors that read the same stream, run as one consumer group.

Three stages read every inference record (drift-judge, rollout-samples,
fleet-sightings). Run apart, each fetches, decompresses, decodes and validates every
message again: on one machine that is most of their CPU (bench/NOTES.md). (They share one
loop, so a slow step of one delays the others: the canary judge, whose rollbacks are the
latency that matters, runs apart under `steward up`.) `Composite`
runs them as one processor over the union of their inputs, so a message is decoded once
and each stage sees exactly what it would see alone (the records of its own input topics
whose keys it accepts, in order). Offsets are held back to the lowest any of them needs,
and they commit and mark what they emitted together. Across machines, run them apart
(one consumer group each) and scale each on its own: the results are the same.

A stage that fails on a record does not take the others down with it: the record goes
to the dead-letter topic for that stage (named in `stage`), the others keep it.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from steward import topics as T
from steward.errors import StewardError
from steward.schema import DeadLetter
from steward.stream import Emit, Processor, Source

log = logging.getLogger(__name__)


class Composite:
    """The processors `stages` as one: state is a list, one entry per stage."""

    def __init__(self, stages: Sequence[Processor[Any]]) -> None:
        if len(stages) < 2:
            raise ValueError("a composite needs at least two stages")
        self.stages = tuple(stages)
        self.name = "+".join(s.name for s in self.stages)
        inputs: dict[str, T.Topic] = {}
        for stage in self.stages:
            inputs.update({t.name: t for t in stage.inputs})
        self.inputs = tuple(inputs.values())
        self._readers: dict[str, list[int]] = {}

    def initial_state(self) -> list[Any]:
        return [s.initial_state() for s in self.stages]

    def _of(self, topic: str) -> list[int]:
        """Which stages read `topic` (a full name: the deployment's prefix + a name)."""
        found = self._readers.get(topic)
        if found is None:
            found = self._readers[topic] = [
                i for i, s in enumerate(self.stages)
                if any(topic.endswith(t.name) for t in s.inputs)]
        return found

    def _wants(self, i: int, src: Source) -> bool:
        accepts = getattr(self.stages[i], "accepts", None)
        if accepts is None:
            return True
        return accepts(next(t for t in self.inputs if src.topic.endswith(t.name)), src.key)

    def accepts(self, topic: T.Topic, key: bytes | None) -> bool:
        """A message is decoded when any stage reading its topic may use it."""
        for stage in self.stages:
            if topic in stage.inputs:
                accepts = getattr(stage, "accepts", None)
                if accepts is None or accepts(topic, key):
                    return True
        return False

    def step(self, state: list[Any], record: Any, now: datetime,
             src: Source) -> tuple[list[Any], list[Emit]]:
        emits: list[Emit] = []
        for i in self._of(src.topic):
            if self._wants(i, src):
                emits += self._step(state, i, record, now, src)
        return state, emits

    def step_run(self, state: list[Any], records: Sequence[Any], now: datetime,
                 src: Source) -> tuple[list[Any], list[Emit]]:
        """Each stage's `step_run` where it has one, else its steps: one message, once."""
        emits: list[Emit] = []
        for i in self._of(src.topic):
            if not self._wants(i, src):
                continue
            step_run = getattr(self.stages[i], "step_run", None)
            if step_run is not None:
                try:  # refuses before changing state, like step: then record by record
                    state[i], more = step_run(state[i], records, now, src)
                    emits += more
                    continue
                except Exception:  # the stage's own steps below log and dead-letter
                    log.debug("%s: step_run refused", self.stages[i].name, exc_info=True)
            for index, record in enumerate(records):
                emits += self._step(state, i, record, now, src._replace(index=index))
        return state, emits

    def _step(self, state: list[Any], i: int, record: Any, now: datetime,
              src: Source) -> list[Emit]:
        stage = self.stages[i]
        try:
            state[i], emits = stage.step(state[i], record, now, src)
        except Exception as exc:  # one stage's failure is its dead letter, not the others'
            if isinstance(exc, StewardError):
                log.warning("%s: %s@%d rejected: %s", stage.name, src.topic, src.offset, exc)
            else:
                log.exception("%s: step failed on %s@%d", stage.name, src.topic, src.offset)
            return [_dead_letter(stage.name, exc, record, src, now)]
        return emits

    def tick(self, state: list[Any], now: datetime) -> tuple[list[Any], list[Emit]]:
        emits: list[Emit] = []
        for i, stage in enumerate(self.stages):
            state[i], more = stage.tick(state[i], now)
            emits += more
        return state, emits

    def hold(self, state: list[Any]) -> dict[str, int]:
        """Per topic, the lowest offset any stage still needs."""
        low: dict[str, int] = {}
        for stage, sub in zip(self.stages, state, strict=True):
            hold = getattr(stage, "hold", None)
            for topic, offset in (hold(sub) if hold is not None else {}).items():
                low[topic] = min(offset, low.get(topic, offset))
        return low


def _dead_letter(stage: str, exc: Exception, record: Any, src: Source,
                 now: datetime) -> Emit:
    raw = record.model_dump_json(by_alias=True).encode() \
        if hasattr(record, "model_dump_json") else repr(record).encode()
    letter = DeadLetter(
        ts=now, stage=stage, reason=f"processing failed: {type(exc).__name__}: {exc}"[:2000],
        error_type="processing", topic=src.topic, partition=src.partition,
        offset=src.offset, key=src.key.decode("utf-8", "replace") if src.key else None,
        record_index=src.index, payload_b64=base64.b64encode(raw).decode())
    return Emit(T.DEADLETTER, record=letter, key=src.topic)
