"""The shell shared by the stages that repartition inference records by model.

`rollout-samples` and `fleet-sightings` both bucket inference records per (model, site)
in tumbling windows and, as each bucket closes, emit one record per slot keyed by model
(a rollout or a promotion spans sites, while inference is keyed by model/site). Only
what a bucket keeps and what it becomes differ: a subclass says which slot a record
counts in (`count`) and what a closed bucket emits (`emit`); windows, watermark, quiet
closing and the offsets held for replay are here, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from processors.windows import Windows, runs
from steward import topics as T
from steward.schema import InferenceRecord
from steward.stream import Emit, Source


@dataclass
class State:
    windows: Windows[dict[Any, Any]] | None = None


class ModelBuckets:
    inputs = (T.INFERENCE,)
    bucket_s: int
    grace_s: float

    def initial_state(self) -> State:
        return State()

    def hold(self, state: State) -> dict[str, int]:
        return state.windows.hold() if state.windows is not None else {}

    def wants(self, record: InferenceRecord) -> bool:
        """Whether this stage buckets the record at all (default: every record)."""
        return True

    def count(self, aggs: dict[Any, Any], record: InferenceRecord) -> None:
        """Add the record to its slot of the open bucket `aggs`."""
        raise NotImplementedError

    def emit(self, model: str, site: str, start: datetime, end: datetime,
             aggs: dict[Any, Any]) -> list[Emit]:
        """What one closed bucket becomes."""
        raise NotImplementedError

    def step(self, state: State, record: Any, now: datetime,
             src: Source) -> tuple[State, list[Emit]]:
        if not isinstance(record, InferenceRecord) or not self.wants(record):
            return state, []
        if state.windows is None:
            state.windows = Windows(self.bucket_s, self.grace_s)
        key = (record.model, record.site)
        aggs = state.windows.add(key, record.ts, src, now, dict)
        if aggs is None:
            return state, []
        self.count(aggs, record)
        return state, self._emit(state.windows.close_by_watermark(key))

    def count_run(self, aggs: dict[Any, Any], records: list[InferenceRecord]) -> None:
        """Add records of one run (same key and bucket) to the open bucket: `count` of each
        in order unless a stage has a cheaper way to the same result."""
        for record in records:
            self.count(aggs, record)

    def step_run(self, state: State, records: Sequence[Any], now: datetime,
                 src: Source) -> tuple[State, list[Emit]]:
        """`step` over the records of one message (`src`: any of them), with the same
        result: consecutive records of one (model, site) and bucket go in as one run."""
        wanted = [r for r in records if isinstance(r, InferenceRecord) and self.wants(r)]
        if not wanted:
            return state, []
        if state.windows is None:
            state.windows = Windows(self.bucket_s, self.grace_s)
        emits: list[Emit] = []
        for key, start, run in runs(wanted, self.bucket_s):
            aggs = state.windows.add_run(key, start, max(r.ts for r in run), src, len(run),
                                         now, dict)
            if aggs is not None:
                self.count_run(aggs, run)
                emits += self._emit(state.windows.close_by_watermark(key))
        return state, emits

    def tick(self, state: State, now: datetime) -> tuple[State, list[Emit]]:
        if state.windows is None:
            return state, []
        return state, self._emit(state.windows.close_quiet(now))

    def _emit(self, closed: list[Any]) -> list[Emit]:
        return [out for (model, site), start, end, aggs in closed
                for out in self.emit(model, site, start, end, aggs)]
