"""Start-up shared by every deployable that talks to Kafka."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

from kafka.errors import KafkaError

from steward.bus.admin import ensure_topics, wait_ready
from steward.bus.runner import Runner
from steward.settings import KafkaSettings

log = logging.getLogger(__name__)


def prepare(kafka: KafkaSettings, timeout_s: float = 60.0) -> None:
    """Wait for the broker, then create missing topics (unless told not to)."""
    wait_ready(kafka, timeout_s)
    if kafka.create_topics:
        ensure_topics(kafka)


def supervise(runner: Runner, stop: threading.Event) -> None:
    """Run `runner` until `stop`; if its loop dies on a Kafka error, start it again."""
    delay = 1.0
    while not stop.is_set():
        try:
            runner.run()
            return
        except (KafkaError, OSError) as exc:
            log.error("%s: loop failed (%s); restarting in %.0fs", runner.name, exc, delay)
            if stop.wait(delay):
                return
            delay = min(delay * 2, 30.0)


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
