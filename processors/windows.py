"""Event-time tumbling windows per key, shared by every windowed processor.

Windows are aligned to the epoch. A window closes when its key's event time (the
watermark: the latest record time seen) passes `end + grace`, or, when the key goes
quiet, after `grace` of wall-clock silence past the end. Records for a closed window
are late: counted and dropped. Each open window remembers the first offset per topic
of its records, so the runner can hold commits until it closes (replay rebuilds it).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from steward.stream import Source

A = TypeVar("A")
Key = Hashable


@dataclass
class Windows(Generic[A]):
    """Open windows of aggregates `A`, by (key, window start)."""

    size_s: int
    grace_s: float
    open: dict[tuple[Key, datetime], A] = field(default_factory=dict)
    held: dict[tuple[Key, datetime], dict[str, int]] = field(default_factory=dict)
    watermark: dict[Key, datetime] = field(default_factory=dict)
    last_seen: dict[Key, datetime] = field(default_factory=dict)
    late: int = 0
    starts: dict[Key, set[datetime]] = field(default_factory=dict)
    """Open window starts per key: closing one key's windows looks at that key only."""

    def start_of(self, ts: datetime) -> datetime:
        epoch = int(ts.timestamp())
        return datetime.fromtimestamp(epoch - epoch % self.size_s, UTC)

    def _closes_at(self, start: datetime) -> datetime:
        return start + timedelta(seconds=self.size_s + self.grace_s)

    def add(self, key: Key, ts: datetime, src: Source, now: datetime,
            new: Callable[[], A]) -> A | None:
        """The aggregate of the window `ts` falls in (created if needed), or None if late."""
        start = self.start_of(ts)
        if self._closes_at(start) <= self.watermark.get(key, start):
            self.late += 1
            return None
        wkey = (key, start)
        agg = self.open.get(wkey)
        if agg is None:
            agg = self.open[wkey] = new()
            self.starts.setdefault(key, set()).add(start)
        self.held.setdefault(wkey, {}).setdefault(src.topic, src.offset)
        self.watermark[key] = max(ts, self.watermark.get(key, ts))
        self.last_seen[key] = now
        return agg

    def close_by_watermark(self, key: Key) -> list[tuple[Key, datetime, datetime, A]]:
        """Windows of `key` its watermark has passed, oldest first: (key, start, end, agg)."""
        mark = self.watermark.get(key)
        if mark is None:
            return []
        due = [(key, s) for s in self.starts.get(key, ()) if self._closes_at(s) <= mark]
        return self._close(due)

    def close_quiet(self, now: datetime) -> list[tuple[Key, datetime, datetime, A]]:
        """Windows past `end + grace` on the wall clock whose key has been quiet for `grace`."""
        quiet = timedelta(seconds=self.grace_s)
        return self._pop(lambda k, start: self._closes_at(start) <= now
                         and now - self.last_seen.get(k, now) >= quiet)

    def _pop(self, due: Callable[[Key, datetime], bool]) -> list[tuple[Key, datetime, datetime,
                                                                         A]]:
        return self._close([w for w in self.open if due(*w)])

    def _close(self, closing: list[tuple[Key, datetime]]) -> list[tuple[Key, datetime,
                                                                        datetime, A]]:
        out = []
        for wkey in sorted(closing, key=lambda w: w[1]):
            agg = self.open.pop(wkey)
            self.held.pop(wkey, None)
            starts = self.starts.get(wkey[0])
            if starts is not None:
                starts.discard(wkey[1])
                if not starts:
                    del self.starts[wkey[0]]
            out.append((wkey[0], wkey[1], wkey[1] + timedelta(seconds=self.size_s), agg))
        return out

    def hold(self) -> dict[str, int]:
        """Per topic, the lowest offset an open window still needs."""
        low: dict[str, int] = {}
        for offsets in self.held.values():
            for topic, offset in offsets.items():
                low[topic] = min(offset, low.get(topic, offset))
        return low
