"""From an event on the alerts topic of the real embedded broker to a delivery whose
signature a real receiver verifies with standardwebhooks: the API (real DuckDB file) owns
the subscription, the delivery service consumes through the shared runner, queues in its
SQLite outbox before committing, and delivers; a redelivered event is not sent twice."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloudevents.core.v1.event import CloudEvent
from prometheus_client import CollectorRegistry

from api.store import Store
from steward import topics as T
from steward.bus.producer import Out, Producer
from steward.schema import to_kafka
from steward.settings import KafkaSettings
from steward.webhooks.main import WebhookService
from steward.webhooks.model import delivery_id, new_secret
from steward.webhooks.settings import WebhookSettings
from tests.support import Served
from tests.webhooks.support import FAST, Receiver

pytestmark = pytest.mark.integration


def starved(event_id: str) -> CloudEvent:
    return CloudEvent({"id": event_id, "source": "steward/gpu-usage",
                       "type": "steward.gpu.partition.starved", "subject": "risk/gpu-0",
                       "time": datetime.now(UTC), "datacontenttype": "application/json",
                       "partitionkey": "fraud"},
                      {"team": "risk", "site": "eu-west-1", "reason": "starved",
                       "severity": "critical"})


def test_alert_on_kafka_reaches_a_verifying_receiver(
        kafka: KafkaSettings, start_api: Callable[[], tuple[Served, Store]],
        services: list[Any], tmp_path: Path, wait: Callable[..., Any]) -> None:
    served, _store = start_api()
    secret = new_secret()
    rx = Receiver(secret).start()
    services.append(rx)
    created = httpx.post(f"{served.url}/webhooks", json={
        "url": rx.url, "event_types": ["steward.gpu.*"], "secret": secret}).json()
    am_rx = Receiver(secret).start()
    services.append(am_rx)
    httpx.post(f"{served.url}/webhooks", json={
        "url": am_rx.url, "event_types": ["steward.gpu.partition.starved"], "secret": secret,
        "format": "alertmanager"})

    settings = WebhookSettings(data_dir=tmp_path / "webhooks", api_url=served.url,
                               webhooks=FAST, webhooks_group=f"{kafka.topic_prefix}webhooks")
    registry = CollectorRegistry()
    service = WebhookService(settings, registry, kafka=kafka, poll_timeout_ms=200).start()
    services.append(service)
    producer = Producer(kafka)
    services.append(producer)
    key, value, headers = to_kafka(starved("alert-1"))
    producer.send_all([Out(T.ALERTS.full(kafka.topic_prefix), key, value, headers)] * 2)

    wait(lambda: rx.verified and am_rx.verified, what="both deliveries verified")
    wid, body = rx.verified[0]
    assert wid == delivery_id("steward/gpu-usage", "alert-1", created["id"])
    assert body["id"] == "alert-1" and body["type"] == "steward.gpu.partition.starved"
    assert body["data"]["team"] == "risk"
    am = am_rx.verified[0][1]
    assert am["version"] == "4" and am["status"] == "firing"
    assert am["alerts"][0]["labels"]["team"] == "risk"
    time.sleep(0.5)
    assert len(rx.verified) == 1 and len(am_rx.verified) == 1  # sent twice on Kafka, once here
    assert rx.refused == [] and am_rx.refused == []
    assert registry.get_sample_value("steward_webhook_enqueued_total") == 2
    shown = wait(lambda: (s := httpx.get(f"{served.url}/webhooks/{created['id']}").json())
                 ["last_delivery"] and s, what="the result reported to the API")
    assert shown["last_delivery"]["outcome"] == "delivered"
