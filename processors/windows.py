"""Event-time tumbling windows per key, shared by every windowed processor.

Windows are aligned to the epoch. A window closes when its key's event time (the
watermark: the latest record time seen) passes `end + grace`, or, when the key goes
quiet, after `grace` of wall-clock silence past the end. Records for a closed window
are late: counted and dropped. Each open window remembers the first offset per topic
of its records, so the runner can hold commits until it closes (replay rebuilds it).

A replay must never rebuild a window that had closed from part of its records and close
it again past the emitted mark: it would go out under the same id with other contents.
A window its key's watermark closed is harmless: the record that closed it comes after
its records, so the replay closes it again there, below the mark, emitting nothing. So
the hold also keeps the record ranges a replay must see whole or not at all: a window
closed on the wall clock, and a late record with the record that made it late (so that
it is late again). The hold moves below such a range while the range reaches above it;
the range is forgotten once the hold has passed it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from steward.stream import Source

A = TypeVar("A")
Key = Hashable
Span = dict[str, tuple[int, int]]
"""Per topic, the first and last offset of records replayed whole or not at all."""


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
    reach: dict[tuple[Key, datetime], dict[str, int]] = field(default_factory=dict)
    """Per open window, the last offset per topic of its records."""
    marked_at: dict[Key, tuple[str, int]] = field(default_factory=dict)
    """Per key, the record (topic, offset) that set its watermark."""
    quiet_until: dict[Key, datetime] = field(default_factory=dict)
    """Per key, where windows closed on the wall clock end (with grace): later records
    for them are late too, though no record says so."""
    spans: list[Span] = field(default_factory=list)
    """Windows closed on the wall clock and late records the hold may still fall inside."""
    low: dict[str, int] | None = None
    """The hold last computed (None: not yet). It only moves on: what made a record late
    from below it, or from a topic it had let go, is past replaying."""

    def start_of(self, ts: datetime) -> datetime:
        epoch = int(ts.timestamp())
        return datetime.fromtimestamp(epoch - epoch % self.size_s, UTC)

    def _closes_at(self, start: datetime) -> datetime:
        return start + timedelta(seconds=self.size_s + self.grace_s)

    def add(self, key: Key, ts: datetime, src: Source, now: datetime,
            new: Callable[[], A]) -> A | None:
        """The aggregate of the window `ts` falls in (created if needed), or None if late."""
        start = self.start_of(ts)
        closes = self._closes_at(start)
        if closes <= self.watermark.get(key, start):
            self.late += 1
            topic, offset = self.marked_at[key]
            if self.low is None or offset >= self.low.get(topic, offset + 1):
                self.spans.append(_join({topic: (offset, offset)}, src.topic, src.offset))
            return None
        if closes <= self.quiet_until.get(key, start):
            self.late += 1  # what a replay does with it is docs/guarantees.md's limit
            return None
        wkey = (key, start)
        agg = self.open.get(wkey)
        if agg is None:
            agg = self.open[wkey] = new()
            self.starts.setdefault(key, set()).add(start)
        self.held.setdefault(wkey, {}).setdefault(src.topic, src.offset)
        self.reach.setdefault(wkey, {})[src.topic] = src.offset
        if key not in self.watermark or ts > self.watermark[key]:
            self.watermark[key] = ts
            self.marked_at[key] = (src.topic, src.offset)
        self.last_seen[key] = now
        return agg

    def add_run(self, key: Key, start: datetime, newest: datetime, src: Source, n: int,
                now: datetime, new: Callable[[], A]) -> A | None:
        """`add` of `n` records of one message (`src`, any index) that share `key` and the
        window `start`, `newest` the latest of their times: the same state as adding them
        one by one. None if they are late (the first decides for all: records inside one
        window cannot move the watermark past that window's close)."""
        closes = self._closes_at(start)
        if closes <= self.watermark.get(key, start) or \
                closes <= self.quiet_until.get(key, start):
            late = self.add(key, start, src, now, new)
            self.late += n - 1  # the spans of the others are the first's (same offset)
            return late
        agg = self.add(key, newest, src, now, new)
        return agg

    def close_by_watermark(self, key: Key) -> list[tuple[Key, datetime, datetime, A]]:
        """Windows of `key` its watermark has passed, oldest first: (key, start, end, agg)."""
        mark = self.watermark.get(key)
        if mark is None:
            return []
        due = [(key, s) for s in self.starts.get(key, ()) if self._closes_at(s) <= mark]
        return self._close(due)

    def close_quiet(self, now: datetime) -> list[tuple[Key, datetime, datetime, A]]:
        """Windows past `end + grace` on the wall clock whose key has been quiet for `grace`.
        Their stragglers are late from then on, not a window going out again under the same
        id with the stragglers alone."""
        quiet = timedelta(seconds=self.grace_s)
        due = [(k, start) for k, start in self.open if self._closes_at(start) <= now
               and now - self.last_seen.get(k, now) >= quiet]
        for key, start in due:
            self.quiet_until[key] = max(self._closes_at(start),
                                        self.quiet_until.get(key, start))
            last = self.reach.get((key, start), {})
            self.spans.append({t: (first, last.get(t, first))
                               for t, first in self.held.get((key, start), {}).items()})
        return self._close(due)

    def _close(self, closing: list[tuple[Key, datetime]]) -> list[tuple[Key, datetime,
                                                                        datetime, A]]:
        out = []
        for wkey in sorted(closing, key=lambda w: w[1]):
            agg = self.open.pop(wkey)
            self.held.pop(wkey, None)
            self.reach.pop(wkey, None)
            starts = self.starts.get(wkey[0])
            if starts is not None:
                starts.discard(wkey[1])
                if not starts:
                    del self.starts[wkey[0]]
            out.append((wkey[0], wkey[1], wkey[1] + timedelta(seconds=self.size_s), agg))
        return out

    def hold(self, floor: dict[str, int] | None = None) -> dict[str, int]:
        """Per topic, the lowest offset to commit: what open windows still need, lowered
        so that no window closed on the clock, nor a late record, is replayed in part."""
        return held_back([self], floor)


def held_back(windows: Iterable[Windows], floor: dict[str, int] | None = None
              ) -> dict[str, int]:
    """The hold of several `Windows` over one partition, and `floor` (what else the
    processor holds): all of it at once, since one's ranges can straddle another's hold.
    Forgets the ranges the hold has passed (the hold never moves back)."""
    ws = list(windows)
    low = dict(floor or {})
    for w in ws:
        for offsets in w.held.values():
            for topic, offset in offsets.items():
                low[topic] = min(offset, low.get(topic, offset))
    pending = [s for w in ws for s in w.spans]
    while True:
        reached = [s for s in pending if any(last >= low.get(t, last + 1)
                                             for t, (_, last) in s.items())]
        if not reached:
            break
        for span in reached:
            for topic, (first, _) in span.items():
                low[topic] = min(first, low.get(topic, first))
        done = {id(s) for s in reached}
        pending = [s for s in pending if id(s) not in done]
    forgotten = {id(s) for s in pending}
    for w in ws:
        w.spans = [s for s in w.spans if id(s) not in forgotten]
        w.low = dict(low)
    return low


def _join(span: Span, topic: str, offset: int) -> Span:
    first, last = span.get(topic, (offset, offset))
    return {**span, topic: (min(first, offset), max(last, offset))}


def runs(records: Sequence[Any], size_s: int) -> Iterator[tuple[Key, datetime, list[Any]]]:
    """Consecutive records of one (model, site) and one epoch-aligned window of `size_s`:
    (key, window start, records), in order. What `Windows.add_run` takes."""
    i, n = 0, len(records)
    while i < n:
        first = records[i]
        key = (first.model, first.site)
        epoch = int(first.ts.timestamp())
        lo = epoch - epoch % size_s
        hi = lo + size_s
        j = i + 1
        while j < n and records[j].model == key[0] and records[j].site == key[1] \
                and lo <= records[j].ts.timestamp() < hi:
            j += 1
        yield key, datetime.fromtimestamp(lo, UTC), list(records[i:j])
        i = j
