"""Start-up shared by every deployable that talks to Kafka."""

from __future__ import annotations

import logging
import threading

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
