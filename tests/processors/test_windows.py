"""Tumbling event-time windows: alignment, watermark closing, quiet closing, late records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from processors.windows import Windows
from steward.stream import Source

T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def test_windows_close_by_watermark_and_by_silence_and_count_late_records():
    w: Windows[list[int]] = Windows(size_s=60, grace_s=10)
    for i, t in enumerate([5, 30, 59, 61]):
        w.add("k", at(t), Source("t", 0, 100 + i), at(t), list).append(i)
    assert w.close_by_watermark("k") == []           # watermark 61 < 60 + 10
    assert w.hold() == {"t": 100}
    w.add("k", at(70), Source("t", 0, 104), at(70), list).append(4)
    closed = w.close_by_watermark("k")               # watermark 70 >= 70: window 0 closes
    assert [(k, s, e, agg) for k, s, e, agg in closed] == [("k", T0, at(60), [0, 1, 2])]
    assert w.hold() == {"t": 103}                    # window 60 opened at offset 103
    assert w.add("k", at(10), Source("t", 0, 105), at(71), list) is None and w.late == 1
    assert w.close_quiet(at(125)) == []              # window 60 is due at 130 on the clock
    w.last_seen["k"] = at(100)
    assert [a for *_, a in w.close_quiet(at(130))] == [[3, 4]]
    assert w.hold() == {}
    # closed on the clock, the window takes no straggler: it would go out again, alone
    assert w.add("k", at(119), Source("t", 0, 106), at(131), list) is None and w.late == 2


def feed(w: Windows[list[int]], records: list[tuple[str, float, float]], start: int = 0
         ) -> list[tuple[str, datetime, list[int]]]:
    """Records (key, event s, arrival s) from offset `start` on, each closing what its key's
    watermark passed, as a processor does: what closed, aggregates of record offsets."""
    closed = []
    for offset, (key, ts, seen) in enumerate(records):
        if offset >= start:
            agg = w.add(key, at(ts), Source("t", 0, offset), at(seen), list)
            if agg is not None:
                agg.append(offset)
            closed += [(k, s, a) for k, s, _, a in w.close_by_watermark(key)]
    return closed


def replayed(records: list[tuple[str, float, float]], start: int, end: datetime
             ) -> dict[tuple[str, datetime], list[int]]:
    """What a new owner closes, by watermark or on the clock at `end`, after replaying
    `records` from offset `start`."""
    w: Windows[list[int]] = Windows(size_s=60, grace_s=10)
    closed = feed(w, records, start) + [(k, s, a) for k, s, _, a in w.close_quiet(end)]
    return {(k, s): agg for k, s, agg in closed}


def test_the_hold_never_splits_a_window_closed_by_the_clock():
    # A's window gets records at 0 and 2; B's window opens at 1 between them; A's window
    # closes on the wall clock while B's is still open
    records = [("a", 5, 0), ("b", 65, 1), ("a", 6, 2)]
    w: Windows[list[int]] = Windows(size_s=60, grace_s=10)
    assert feed(w, records) == []
    w.last_seen["b"] = at(75)
    assert [(k, agg) for k, _, _, agg in w.close_quiet(at(80))] == [("a", [0, 2])]
    # committing at 1 (B's first record) would replay A's window from offset 2 alone: a
    # verdict under the same window with other contents
    assert replayed(records, 1, at(200))[("a", T0)] == [2]
    assert w.hold() == {"t": 0}
    assert replayed(records, w.hold()["t"], at(200))[("a", T0)] == [0, 2]
    w.close_quiet(at(200))
    assert w.hold() == {} and w.spans == []  # nothing open: the ranges are forgotten


def test_the_hold_keeps_a_late_record_with_what_made_it_late():
    # A's record at 1 (event time 75) closes A's first window; B opens at 2; A's record at
    # 3 is late for the closed window; then A's second window closes on the clock
    records = [("a", 5, 0), ("a", 75, 1), ("b", 100, 2), ("a", 10, 3)]
    w: Windows[list[int]] = Windows(size_s=60, grace_s=10)
    assert feed(w, records) == [("a", T0, [0])] and w.late == 1
    w.last_seen["b"] = at(125)
    assert [(k, agg) for k, _, _, agg in w.close_quiet(at(131))] == [("a", [1])]
    # from 2, the late record would open A's first window again, alone
    assert replayed(records, 2, at(300))[("a", T0)] == [3]
    assert w.hold() == {"t": 1}   # from 1, A's watermark is back before the late record
    again = replayed(records, 1, at(300))
    assert ("a", T0) not in again and again[("a", at(60))] == [1]


def test_a_window_its_watermark_closed_may_be_split_the_replay_closes_it_at_the_same_record():
    # B opens a window at 1, between A's records at 0 and 2; A's record at 3 closes A's
    records = [("a", 5, 0), ("b", 65, 1), ("a", 6, 2), ("a", 75, 3)]
    w: Windows[list[int]] = Windows(size_s=60, grace_s=10)
    assert feed(w, records) == [("a", T0, [0, 2])]
    # committed at 1, a replay rebuilds A's window in part and closes it at offset 3 again:
    # below the emitted mark (the verdict went out with offset 3's batch), so not emitted
    assert w.hold() == {"t": 1}
    assert feed(Windows(size_s=60, grace_s=10), records, 1) == [("a", T0, [2])]
