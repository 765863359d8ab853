"""The store on a real DuckDB file, and the API over it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from api.app import create_app
from api.store import EventQuery, EventRow, Store

T0 = datetime(2026, 11, 23, 10, tzinfo=UTC)


def row(i: int, type_: str = "steward.model.rolled_back", site: str = "s1") -> EventRow:
    return EventRow(id=f"e{i}", source="/p", type=type_, subject=f"m/{site}",
                    time=T0 + timedelta(minutes=i), model="m", site=site,
                    event={"id": f"e{i}", "type": type_, "specversion": "1.0"})


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "db" / "steward.duckdb")
    yield s
    s.close()


def test_inserts_are_idempotent_by_source_and_id(store):
    assert store.insert_events([row(1), row(2), row(1)]) == 2
    assert store.insert_events([row(2), row(3)]) == 1
    assert store.count_events() == 3
    other_source = EventRow(**{**row(1).__dict__, "source": "/q"})
    assert store.insert_events([other_source]) == 1


def test_queries_filter_and_page(store):
    store.insert_events([row(i, site="s1" if i % 2 else "s2") for i in range(10)])
    first = store.query_events(EventQuery(site="s1", limit=3))
    assert [e["id"] for _, e in first] == ["e1", "e3", "e5"]
    rest = store.query_events(EventQuery(site="s1", after=first[-1][0], limit=3))
    assert [e["id"] for _, e in rest] == ["e7", "e9"]
    window = store.query_events(EventQuery(since=T0 + timedelta(minutes=2),
                                           until=T0 + timedelta(minutes=4)))
    assert [e["id"] for _, e in window] == ["e2", "e3"]


def test_the_file_outlives_the_process(tmp_path):
    path = tmp_path / "steward.duckdb"
    s = Store(path)
    s.insert_events([row(1)])
    s.close()
    again = Store(path)
    assert again.count_events() == 1
    again.close()


def test_api_serves_events_health_and_metrics(store):
    store.insert_events([row(i) for i in range(3)])
    ok = {"store": store.ping}
    client = TestClient(create_app(store, CollectorRegistry(), ok))
    page = client.get("/events", params={"limit": 2}).json()
    assert [e["id"] for e in page["events"]] == ["e0", "e1"] and page["has_more"]
    tail = client.get("/events", params={"after": page["next_after"]}).json()
    assert [e["id"] for e in tail["events"]] == ["e2"] and not tail["has_more"]
    assert client.get("/events", params={"limit": 0}).status_code == 422
    assert client.get("/healthz").json()["status"] == "ok"
    assert "steward_store_events 3.0" in client.get("/metrics").text

    down = TestClient(create_app(store, CollectorRegistry(), {"broker": lambda: 1 / 0}))
    resp = down.get("/readyz")
    assert resp.status_code == 503 and resp.json()["checks"] == {"broker": False}
