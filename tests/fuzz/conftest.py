"""Fuzzing fixtures: the API and the collector on a real DuckDB file and the real embedded
broker, built once per module (Hypothesis runs many examples through one app).

Bounded for CI: each Hypothesis test runs `EXAMPLES` examples, derandomized (the same
inputs on every run). A longer campaign: `STEWARD_FUZZ_EXAMPLES=2000 pytest tests/fuzz`
(random again, so each run explores new inputs).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from prometheus_client import CollectorRegistry

from api.app import create_app as create_api
from api.store import Store
from collector.app import create_app as create_collector
from collector.publish import Publisher
from collector.settings import CollectorSettings
from steward.auth import Authenticator, new_token
from steward.bus.admin import ensure_topics
from steward.bus.producer import Producer
from steward.settings import KafkaSettings
from tests.integration.conftest import broker  # noqa: F401  (the session's embedded broker)

EXAMPLES = int(os.environ.get("STEWARD_FUZZ_EXAMPLES", "0")) or 6
CAMPAIGN = "STEWARD_FUZZ_EXAMPLES" in os.environ
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not CAMPAIGN,
                suppress_health_check=list(HealthCheck), database=None)
"""The settings every fuzz test runs under."""

TOKEN, SPEC = new_token("fuzzer", ["ingest", "read", "admin"], None)
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def fuzz_kafka(broker) -> KafkaSettings:  # noqa: F811
    settings = KafkaSettings(bootstrap_servers=broker.bootstrap_servers,
                             topic_prefix=f"f{uuid.uuid4().hex[:10]}.")
    ensure_topics(settings)
    return settings


@pytest.fixture(scope="module")
def producer(fuzz_kafka: KafkaSettings) -> Iterator[Producer]:
    p = Producer(fuzz_kafka, retry_after_s=1.0)
    yield p
    p.close()


@pytest.fixture(scope="module")
def api_app(tmp_path_factory, fuzz_kafka: KafkaSettings, producer: Producer) -> Iterator[Any]:
    store = Store(tmp_path_factory.mktemp("fuzz-api") / "steward.duckdb")
    app = create_api(store, CollectorRegistry(), {"store": store.ping},
                     auth=Authenticator([SPEC]))
    app.state.publish = producer.send_all
    app.state.topic_prefix = fuzz_kafka.topic_prefix
    yield app
    store.close()


@pytest.fixture(scope="module")
def collector_app(fuzz_kafka: KafkaSettings, producer: Producer) -> Any:
    settings = CollectorSettings(kafka=fuzz_kafka, tokens=[SPEC], max_body_bytes=256 * 1024)
    publisher = Publisher(producer, fuzz_kafka.topic_prefix, settings.max_records_per_message,
                          max_message_bytes=fuzz_kafka.max_message_bytes)
    return create_collector(settings, publisher, CollectorRegistry(), ready=lambda: True)
