"""The store on a real DuckDB file, and the API over it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from api.app import create_app
from api.store import EventQuery, EventRow, InferenceQuery, Store
from steward.schema import InferenceRecord

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


def inference(i: int, site: str = "s1") -> InferenceRecord:
    plus2 = timezone(timedelta(hours=2))
    return InferenceRecord(id=f"r{i}", model="m", version="1", site=site, tier="edge",
                           ts=datetime(2026, 11, 23, 12, i, tzinfo=plus2), latency_ms=5.0 + i,
                           features={"amount": i, "big": 2**70})


def test_inference_records_are_stored_once_per_id_in_arrival_order(store):
    first = [(inference(3), 0, 10), (inference(1), 0, 11), (inference(3, site="s2"), 0, 12)]
    assert store.insert_inferences(first) == 2  # r3 twice in one batch: the first one kept
    assert store.insert_inferences([(inference(1), 0, 13), (inference(2), 1, 7)]) == 1
    assert store.count_inferences() == 3
    page = store.query_inferences(InferenceQuery())
    assert [r["id"] for _, r in page] == ["r3", "r1", "r2"]
    assert page[0][1] == inference(3).model_dump(mode="json", by_alias=True)
    assert store.query_inferences(InferenceQuery(site="s2")) == []
    at = datetime(2026, 11, 23, 10, 1, tzinfo=UTC)  # r1's 12:01 at +02:00
    assert [r["id"] for _, r in store.query_inferences(
        InferenceQuery(since=at, until=at + timedelta(seconds=1)))] == ["r1"]
    with store.cursor() as cur:
        assert cur.execute("SELECT kafka_partition, kafka_offset, node FROM inferences "
                           "WHERE id = 'r2'").fetchone() == (1, 7, None)


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
