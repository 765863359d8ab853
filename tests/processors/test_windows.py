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
