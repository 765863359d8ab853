"""Reference datasets through the API, on a real DuckDB file."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from api.app import create_app
from api.store import Store

CSV = b"amount,channel,score\n10.5,pos,0.1\n,web,0.7\n3,pos,0.4\n"


@pytest.fixture
def client(tmp_path):
    store = Store(tmp_path / "steward.duckdb")
    yield TestClient(create_app(store, CollectorRegistry(), {}))
    store.close()


def put(client, body: bytes, ctype: str = "text/csv", **params):
    return client.put("/references/fraud/1.4.0", content=body, headers={"content-type": ctype},
                      params={"categorical": ["channel"], "prediction": "score", **params})


def test_csv_reference_round_trip(client):
    resp = put(client, CSV)
    assert resp.status_code == 201, resp.text
    summary = resp.json()
    assert summary["columns"] == {"amount": "numerical", "channel": "categorical",
                                  "score": "numerical"}
    assert (summary["rows"], summary["prediction"], summary["source"]) == (3, "score", "upload")
    ref = client.get("/references/fraud/1.4.0").json()
    assert ref["data"] == [{"amount": 10.5, "channel": "pos", "score": 0.1},
                           {"amount": None, "channel": "web", "score": 0.7},
                           {"amount": 3.0, "channel": "pos", "score": 0.4}]
    assert [r["version"] for r in client.get("/references").json()] == ["1.4.0"]


def test_parquet_and_replacement(client):
    frame = pd.DataFrame({"amount": [1.0, 2.0], "channel": ["a", "b"], "score": [0.5, 0.6]})
    buf = io.BytesIO()
    frame.to_parquet(buf)
    put(client, CSV)
    resp = put(client, buf.getvalue(), "application/vnd.apache.parquet")
    assert resp.status_code == 201 and resp.json()["rows"] == 2
    assert [r["amount"] for r in client.get("/references/fraud/1.4.0").json()["data"]] == [1, 2]


@pytest.mark.parametrize(("body", "ctype", "params", "status", "reason"), [
    (b"amount,channel\n1,pos\n", "text/csv", {"categorical": [], "prediction": None}, 400,
     "declare it categorical"),
    (CSV, "text/csv", {"categorical": ["nope"]}, 400, "not in the file: nope"),
    (CSV, "application/json", {}, 415, "text/csv"),
    (b"", "text/csv", {}, 400, "empty body"),
    (b"amount\n1\ninf\n", "text/csv", {"categorical": [], "prediction": None}, 400, "finite"),
])
def test_bad_references_are_refused_with_a_reason(client, body, ctype, params, status, reason):
    resp = client.put("/references/fraud/1.4.0", content=body, headers={"content-type": ctype},
                      params={k: v for k, v in {"categorical": ["channel"], "prediction": "score",
                                                **params}.items() if v is not None})
    assert resp.status_code == status and reason in resp.json()["detail"]


def test_unknown_and_badly_named(client):
    assert client.get("/references/fraud/9.9").status_code == 404
    assert client.put("/references/a%2Fb/1", content=CSV,
                      headers={"content-type": "text/csv"}).status_code in (404, 422)
