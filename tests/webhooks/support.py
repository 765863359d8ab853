"""Webhook test parts, all real: the API app under uvicorn on a real DuckDB file (auth
on, an admin token for the delivery service), a real threaded HTTP receiver that checks
every signature with the standardwebhooks verifier, and the delivery service's outbox
and deliverer with small backoff settings."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cloudevents.core.v1.event import CloudEvent
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from steward.stream import Source
from steward.webhooks.deliverer import Deliverer
from steward.webhooks.metrics import WebhookMetrics
from steward.webhooks.outbox import Outbox
from steward.webhooks.settings import DeliveryOptions
from steward.webhooks.sink import WebhookSink
from steward.webhooks.subscriptions import ApiSubscriptions
from tests import support
from tests.support import Seen, Upstream

FAST = DeliveryOptions(backoff_base_s=0.05, backoff_max_s=0.2, max_attempts=50, poll_s=0.05,
                       cache_ttl_s=0.05, timeout_s=2.0, workers=2)


def alert(event_id: str, event_type: str = "steward.gpu.partition.starved") -> CloudEvent:
    return CloudEvent({"id": event_id, "source": "steward/test", "type": event_type,
                       "subject": "risk/gpu-0", "time": datetime.now(UTC)},
                      {"team": "risk", "reason": "starved", "severity": "critical"})


@dataclass
class Api:
    url: str
    token: str
    http: httpx.Client

    def create(self, url: str, types: list[str] | None = None, **extra: Any) -> dict[str, Any]:
        resp = self.http.post("/webhooks", json={"url": url,
                                                 "event_types": types or ["steward.gpu.*"],
                                                 **extra})
        assert resp.status_code == 201, resp.text
        return resp.json()

    def get(self, sid: str) -> dict[str, Any]:
        resp = self.http.get(f"/webhooks/{sid}")
        assert resp.status_code == 200, resp.text
        return resp.json()


@dataclass
class Receiver:
    """A real HTTP endpoint: verifies each request with `Webhook(secret).verify`, keeps the
    verified ones (webhook-id, body) and answers `status`."""

    secret: str
    port: int = 0
    status: int = 200
    verified: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    server: Upstream | None = None

    def answer(self, seen: Seen) -> tuple[int, dict[str, str], bytes]:
        try:
            body = Webhook(self.secret).verify(seen.raw, seen.headers)
        except WebhookVerificationError as exc:
            self.refused.append(str(exc))
            return 400, {}, b"bad signature"
        self.verified.append((seen.headers["webhook-id"], body))
        return self.status, {"Content-Type": "application/json"}, b"{}"

    def start(self) -> Receiver:
        self.server = Upstream(self.answer, self.port)
        self.port = self.server.server.server_address[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def ids(self) -> list[str]:
        return [i for i, _ in self.verified]


class Delivery:
    """The delivery service without Kafka: outbox, sink (fed by hand) and deliverer."""

    def __init__(self, path: Path, api: Api, options: DeliveryOptions = FAST) -> None:
        self.registry = CollectorRegistry()
        self.outbox = Outbox(path)
        self.metrics = WebhookMetrics(self.registry)
        self.metrics.watch(self.registry, self.outbox, self.outbox.clock)
        self.subs = ApiSubscriptions(api.url, SecretStr(api.token), ttl_s=options.cache_ttl_s)
        self.wake = threading.Event()
        self.sink = WebhookSink(self.outbox, self.subs, self.metrics, wake=self.wake)
        self.deliverer = Deliverer(self.outbox, self.subs, options, self.metrics, wake=self.wake)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.deliverer.run, args=(self.stopping,),
                                       daemon=True)

    def feed(self, *events: CloudEvent) -> None:
        self.sink.write([(e, Source("test", 0, i)) for i, e in enumerate(events)])

    def start(self) -> Delivery:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)
        self.deliverer.close()
        self.subs.close()
        self.outbox.close()

    def states(self) -> dict[str, int]:
        return self.outbox.stats().by_state

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels or None) or 0.0


def body_ids(receiver: Receiver) -> list[str]:
    return [json.dumps(b, sort_keys=True) for _, b in receiver.verified]



def wait_for(predicate: Callable[[], Any], timeout_s: float = 20.0, what: str = "") -> Any:
    """The shared poller, with this suite's shorter timeout and finer interval."""
    return support.wait_for(predicate, timeout_s, what, interval_s=0.05)
