"""Webhook fixtures: a real API, real receivers, the delivery service without Kafka."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from api.app import create_app
from api.store import Store
from steward.auth import Authenticator, new_token
from steward.webhooks.settings import DeliveryOptions
from tests.support import Served
from tests.webhooks.support import FAST, Api, Delivery, Receiver


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    store = Store(tmp_path / "steward.duckdb")
    token, spec = new_token("webhooks", ["admin"], None)
    app = create_app(store, CollectorRegistry(), {"store": store.ping},
                     auth=Authenticator([spec]))
    served = Served(app)
    http = httpx.Client(base_url=served.url, headers={"authorization": f"Bearer {token}"},
                        timeout=10)
    try:
        yield Api(served.url, token, http)
    finally:
        http.close()
        served.stop()
        store.close()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.stop()


@pytest.fixture
def delivery(tmp_path: Path, api: Api) -> Iterator[Callable[..., Delivery]]:
    made: list[Delivery] = []

    def make(options: DeliveryOptions = FAST) -> Delivery:
        d = Delivery(tmp_path / "outbox" / "webhooks.sqlite3", api, options)
        made.append(d)
        return d
    yield make
    for d in made:
        if not d.stopping.is_set():
            d.stop()
