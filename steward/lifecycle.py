"""Process lifecycle helpers with no Kafka in them: signals and cached probes."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable


def cached(check: Callable[[], bool], ttl_s: float = 2.0) -> Callable[[], bool]:
    """A probe that asks at most once per `ttl_s` (readiness is polled often)."""
    state = {"at": 0.0, "ok": False}

    def probe() -> bool:
        if time.monotonic() - state["at"] > ttl_s:
            state["ok"], state["at"] = check(), time.monotonic()
        return state["ok"]
    return probe


def on_signals(handler: Callable[[], None]) -> None:
    """Call `handler` on SIGTERM and SIGINT (from the main thread only)."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: handler())
