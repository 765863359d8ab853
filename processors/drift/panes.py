"""Sliding windows made of tumbling panes.

A sliding window of `window_s` that advances every `pane_s` is the union of the last
`window_s / pane_s` panes. Panes are what records and edge profiles are collected in
(an agent's profile covers one pane), so each record is kept once, however many windows
it falls in, and profiles merge across panes as they do across nodes. A closed pane is
kept until the last window holding it has been judged; its first offsets stay held, so a
restart replays it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Pane:
    start: datetime
    end: datetime
    rows: Any
    first: dict[str, int]
    """Per topic, the first offset of the pane's input."""


@dataclass
class Panes:
    """The recent closed panes per key."""

    window_s: int
    pane_s: int
    recent: dict[Hashable, deque[Pane]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.window_s % self.pane_s or self.pane_s > self.window_s:
            raise ValueError(f"a {self.window_s}s window cannot slide by {self.pane_s}s: "
                             "the slide must divide the window")

    def push(self, key: Hashable, pane: Pane) -> list[Pane]:
        """Add a closed pane; the panes of the window that ends with it, oldest first
        (fewer than a full window's after a gap or at the start)."""
        held = self.recent.setdefault(key, deque(maxlen=self.window_s // self.pane_s))
        held.append(pane)
        start = pane.end - timedelta(seconds=self.window_s)
        while held and held[0].start < start:
            held.popleft()
        return list(held)

    def forget(self, last_seen: dict[Hashable, datetime], now: datetime,
               quiet_s: float) -> None:
        """Drop the panes of keys that sent nothing for `quiet_s` of wall-clock time
        (`last_seen`: when each key's last record arrived). Event time is not used: in a
        replay or a backfill it runs far behind the clock, and the panes are still needed."""
        quiet = timedelta(seconds=quiet_s)
        for key in [k for k in self.recent if now - last_seen.get(k, now) >= quiet]:
            del self.recent[key]

    def hold(self) -> dict[str, int]:
        low: dict[str, int] = {}
        for held in self.recent.values():
            for pane in held:
                for topic, offset in pane.first.items():
                    low[topic] = min(offset, low.get(topic, offset))
        return low
