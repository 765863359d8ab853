"""Read an events topic without joining a group: for people, not for processing."""

from __future__ import annotations

import json
from collections.abc import Iterator

from kafka import KafkaConsumer

from steward import topics as T
from steward.codec import decode_event
from steward.errors import ConfigError
from steward.schema import to_json

NAMES = {"actions": T.ACTIONS, "alerts": T.ALERTS, "deadletter": T.DEADLETTER}


def tail(bootstrap: str, topic: str, prefix: str = "", from_beginning: bool = False,
         count: int = 0) -> Iterator[str]:
    """Yield one JSON line per message; CloudEvents in structured form."""
    if topic not in NAMES:
        raise ConfigError(f"unknown topic {topic!r}; pick one of {', '.join(NAMES)}")
    spec = NAMES[topic]
    consumer = KafkaConsumer(spec.full(prefix), bootstrap_servers=bootstrap.split(","),
                             group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest" if from_beginning else "latest")
    seen = 0
    try:
        for msg in consumer:
            if spec.payload == "cloudevent":
                decoded = decode_event(msg.key, msg.value, list(msg.headers or []))
                doc = to_json(decoded.items[0]) if decoded.items else \
                    {"undecodable": decoded.rejected[0].reason}
            else:
                doc = json.loads(msg.value)
            yield json.dumps(doc)
            seen += 1
            if count and seen >= count:
                return
    finally:
        consumer.close()
