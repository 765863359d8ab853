"""Topic creation and broker readiness."""

from __future__ import annotations

import logging
import time

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from steward import topics as T
from steward.errors import Unavailable
from steward.settings import KafkaSettings

log = logging.getLogger(__name__)


def _admin(kafka: KafkaSettings) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=kafka.servers(),
        client_id=f"{kafka.client_id}-admin",
        request_timeout_ms=kafka.request_timeout_ms,
    )


def wait_ready(kafka: KafkaSettings, timeout_s: float = 30.0) -> None:
    """Block until the cluster answers a metadata request, or raise `Unavailable`."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            admin = _admin(kafka)
            try:
                admin.list_topics()
                return
            finally:
                admin.close()
        except (KafkaError, OSError) as exc:
            last = exc
            time.sleep(0.2)
    raise Unavailable(f"Kafka at {kafka.bootstrap_servers} not ready after {timeout_s}s: {last}")


def ensure_topics(kafka: KafkaSettings, wanted: tuple[T.Topic, ...] = T.ALL) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = _admin(kafka)
    try:
        existing = set(admin.list_topics())
        new = [
            NewTopic(t.full(kafka.topic_prefix), t.partitions, kafka.replication_factor)
            for t in wanted
            if t.full(kafka.topic_prefix) not in existing
        ]
        created = []
        for topic in new:  # one by one: a concurrent creator must not fail the others
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        if created:
            log.info("created topics: %s", ", ".join(created))
        return created
    finally:
        admin.close()


def is_reachable(kafka: KafkaSettings) -> bool:
    """A cheap readiness probe."""
    try:
        admin = _admin(kafka)
    except (KafkaError, OSError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()
