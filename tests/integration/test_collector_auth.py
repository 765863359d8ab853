"""Auth at the collector's door, on a real server: 401 and 403 with reasons."""

from __future__ import annotations

import httpx
from google.rpc import error_details_pb2, status_pb2

from steward.auth import new_token
from steward.demo import latency_request

BERLIN_TOKEN, BERLIN = new_token("berlin-n1", ["ingest"], "factory-berlin")
READ_TOKEN, READER = new_token("dash", ["read"], None)


def rec(site: str) -> dict:
    return {"model": "m", "version": "1", "site": site, "tier": "edge",
            "ts": "2026-11-23T10:00:00Z", "latency_ms": 5}


def test_tokens_scope_and_site_binding(start_collector):
    url = start_collector(tokens=[BERLIN, READER]).url
    ok = {"authorization": f"Bearer {BERLIN_TOKEN}"}

    missing = httpx.post(f"{url}/v1/inferences", json=[rec("factory-berlin")])
    assert missing.status_code == 401 and "missing Authorization" in missing.json()["detail"]
    assert missing.json()["code"] == "missing_token"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = httpx.post(f"{url}/v1/inferences", json=[rec("factory-berlin")],
                       headers={"authorization": "Bearer stw_guess"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "unknown_token"
    reader = httpx.post(f"{url}/v1/inferences", json=[rec("factory-berlin")],
                        headers={"authorization": f"Bearer {READ_TOKEN}"})
    assert reader.status_code == 403 and "lacks the 'ingest' scope" in reader.json()["detail"]
    assert reader.json()["code"] == "missing_scope"

    assert httpx.post(f"{url}/v1/inferences", json=[rec("factory-berlin")],
                      headers=ok).json()["accepted"] == 1
    other = httpx.post(f"{url}/v1/inferences", json=[rec("factory-berlin"), rec("shop-lyon")],
                       headers=ok)
    assert other.status_code == 403 and "shop-lyon" in other.json()["detail"]
    assert other.json()["code"] == "site_not_allowed"

    # OTLP: the same rules, answered as google.rpc.Status in the request's encoding
    body = latency_request("1", "n1", [10.0], 1, 2).SerializeToString()  # site eu-west-1
    proto = {"content-type": "application/x-protobuf"}
    denied = httpx.post(f"{url}/v1/metrics", content=body, headers={**proto, **ok})
    assert denied.status_code == 403
    status = status_pb2.Status.FromString(denied.content)
    assert "eu-west-1" in status.message
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info) and (info.reason, info.domain) == (
        "site_not_allowed", "steward")
    anon = httpx.post(f"{url}/v1/metrics", content=body, headers=proto)
    assert anon.status_code == 401 and status_pb2.Status.FromString(anon.content).code == 16
