"""The shell shared by the stages that repartition inference records by model.

`rollout-samples` and `fleet-sightings` both bucket inference records per (model, site)
in tumbling windows and, as each bucket closes, emit one record per slot keyed by model
(a rollout or a promotion spans sites, while inference is keyed by model/site). Only
what a bucket keeps and what it becomes differ: a subclass says which slot a record
counts in (`count`) and what a closed bucket emits (`emit`); windows, watermark, quiet
closing and the offsets held for replay are here, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from processors.windows import Windows
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

    def tick(self, state: State, now: datetime) -> tuple[State, list[Emit]]:
        if state.windows is None:
            return state, []
        return state, self._emit(state.windows.close_quiet(now))

    def _emit(self, closed: list[Any]) -> list[Emit]:
        return [out for (model, site), start, end, aggs in closed
                for out in self.emit(model, site, start, end, aggs)]
