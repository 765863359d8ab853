"""Integration fixtures: the real embedded broker, real servers on loopback, real DuckDB files.

One broker serves the session; each test gets its own topic prefix, so tests
never see each other's records and leave nothing that matters behind.
"""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer
from prometheus_client import CollectorRegistry

from api.app import create_app as create_api
from api.decisions import DecisionSink
from api.sink import EventSink, InferenceSink
from api.store import Store
from api.verdicts import VerdictSink, VerdictStore
from collector.app import create_app as create_collector
from collector.publish import Publisher
from collector.settings import CollectorSettings
from processors.governance_gate import GovernanceGate
from steward.broker import EmbeddedBroker, free_port
from steward.bus.admin import ensure_topics, wait_ready
from steward.bus.metrics import StreamMetrics
from steward.bus.producer import Producer
from steward.bus.runner import Runner
from steward.governance.embedded import EmbeddedEngine
from steward.governance.facts import ApiCostFacts
from steward.governance.gate import Gate
from steward.governance.masking import mask
from steward.settings import KafkaSettings
from tests.support import Served, wait_for

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    b = EmbeddedBroker(free_port(), log_file=log).start()
    try:
        wait_ready(KafkaSettings(bootstrap_servers=b.bootstrap_servers))
        yield b
    finally:
        b.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A broker of this test's own, to stop and start again (same port)."""
    b = EmbeddedBroker(free_port(), log_file=tmp_path / "own-broker.log").start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def kafka(broker: EmbeddedBroker) -> KafkaSettings:
    """Settings with a topic prefix of this test's own; its topics are created."""
    settings = KafkaSettings(bootstrap_servers=broker.bootstrap_servers,
                             topic_prefix=f"t{uuid.uuid4().hex[:10]}.", max_poll_interval_ms=10000)
    ensure_topics(settings)
    return settings


class RunnerThread:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.thread = threading.Thread(target=runner.run, daemon=True, name=runner.name)

    def start(self) -> RunnerThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.runner.stop()
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), f"{self.runner.name} did not stop"


@pytest.fixture
def services() -> Iterator[list[Any]]:
    """Things to stop at the end of the test, in reverse order of starting."""
    started: list[Any] = []
    yield started
    for item in reversed(started):
        (getattr(item, "stop", None) or item.close)()


@pytest.fixture
def start_collector(kafka: KafkaSettings, services: list[Any]) -> Callable[..., Served]:
    def start(kafka_settings: KafkaSettings | None = None, telemetry: Any = None,
              **overrides: Any) -> Served:
        k = kafka_settings or kafka
        settings = CollectorSettings(kafka=k, **overrides)
        producer = Producer(k, retry_after_s=settings.retry_after_s)
        services.append(producer)
        publisher = Publisher(producer, k.topic_prefix, settings.max_records_per_message,
                          max_message_bytes=settings.kafka.max_message_bytes)
        app = create_collector(settings, publisher, CollectorRegistry(), ready=lambda: True,
                               telemetry=telemetry)
        server = Served(app)
        services.append(server)
        return server
    return start


@pytest.fixture
def start_runner(kafka: KafkaSettings, services: list[Any]) -> Callable[..., Runner]:
    def start(stage: Any, group: str | None = None, telemetry: Any = None) -> Runner:
        producer = Producer(kafka)
        services.append(producer)
        runner = Runner(stage, kafka=kafka, group_id=group or f"{kafka.topic_prefix}{stage.name}",
                        producer=producer, metrics=StreamMetrics(CollectorRegistry()),
                        poll_timeout_ms=200, tick_interval_s=0.5, telemetry=telemetry)
        services.append(RunnerThread(runner).start())
        return runner
    return start


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merged(out[key], value) if both else value
    return out


@pytest.fixture
def start_gate(start_runner: Callable[..., Runner], tmp_path: Path) -> Callable[..., Runner]:
    """The governance gate on the shipped rules/ (embedded engine), its data document
    deep-merged with `data` (the test's sites, teams); `api_url` adds team spend."""
    def start(data: dict[str, Any] | None = None, api_url: str | None = None) -> Runner:
        rules = tmp_path / "rules"
        shutil.copytree(REPO / "rules", rules, dirs_exist_ok=True)
        doc = json.loads((rules / "data.json").read_text())
        (rules / "data.json").write_text(json.dumps(_merged(doc, data or {})))
        facts = ApiCostFacts(api_url) if api_url else None
        gate = Gate(EmbeddedEngine(rules), mask, facts=facts)
        return start_runner(GovernanceGate(gate))
    return start


@pytest.fixture
def start_api(start_runner: Callable[..., Runner], services: list[Any],
              tmp_path: Path) -> Callable[[], tuple[Served, Store]]:
    """The API process's parts: a DuckDB file, the sink runner, the HTTP app."""
    def start() -> tuple[Served, Store]:
        store = Store(tmp_path / "steward.duckdb")
        services.append(store)
        start_runner(EventSink(store))
        start_runner(InferenceSink(store))
        start_runner(VerdictSink(VerdictStore(store)))
        app = create_api(store, CollectorRegistry(), {"store": store.ping})
        start_runner(DecisionSink(app.state.decisions))
        server = Served(app)
        services.append(server)
        return server, store
    return start


@pytest.fixture
def wait() -> Callable[..., Any]:
    return wait_for


def read_topic(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Everything on `topic` now, read by an independent client: a bare kafka-python
    consumer with no group, nothing of Steward's runner or codecs.

    (kcat would be the more independent choice, but the librdkafka 2.0 in Debian cannot
    parse the embedded broker's ApiVersions v3 answer: "Protocol read buffer underflow".)
    """
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=1500)
    try:
        return [{"key": m.key.decode() if m.key else None, "value": m.value,
                 "headers": {k: v.decode() for k, v in (m.headers or [])}} for m in consumer]
    finally:
        consumer.close()


@pytest.fixture
def topic_reader(broker: EmbeddedBroker) -> Callable[..., list[dict[str, Any]]]:
    """`topic_reader(name)` on the session broker, or `topic_reader(name, bootstrap)`."""
    return lambda topic, bootstrap=None: read_topic(bootstrap or broker.bootstrap_servers, topic)
