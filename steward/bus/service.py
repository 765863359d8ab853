"""Start-up shared by every deployable that talks to Kafka."""

from __future__ import annotations

import gc
import logging
import threading

from kafka.errors import KafkaError

from steward.bus.admin import ensure_topics, wait_ready
from steward.bus.runner import Runner
from steward.settings import KafkaSettings

log = logging.getLogger(__name__)


def prepare(kafka: KafkaSettings, timeout_s: float = 60.0) -> None:
    """Wait for the broker, then create missing topics (unless told not to); tune the GC."""
    wait_ready(kafka, timeout_s)
    if kafka.create_topics:
        ensure_topics(kafka)
    tune_gc()


def tune_gc(gen0: int = 50_000) -> None:
    """Fewer cyclic-GC passes in a process that streams records. Decoding a batch makes
    tens of thousands of short-lived dicts and models, freed by reference counting (none
    forms a cycle), yet at the default threshold (700 allocations) each batch set off
    dozens of collections: about a third of decode time. Cycles are still collected, less
    often. (No `gc.freeze()`: DuckDB's bindings then report leaks at exit.)"""
    gc.set_threshold(gen0, *gc.get_threshold()[1:])


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
