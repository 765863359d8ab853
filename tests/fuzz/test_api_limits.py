"""The API's limits, on the real app: oversized bodies are 413, names that could reach the
file system (`../`, encoded or not) are refused with a 4xx, and the audit SQL cannot
read a file."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from api.app import MAX_BODY_BYTES
from tests.fuzz.conftest import AUTH

TRAVERSALS = ["..", "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e", "..\\..\\win.ini",
              "a/../../b", "/etc/passwd", "~root", "x%00y"]


@pytest.fixture(scope="module")
def client(api_app):
    with TestClient(api_app, raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/rollouts"), ("POST", "/webhooks"), ("POST", "/audit/query"),
    ("POST", "/models/m/versions")])
def test_oversized_json_bodies_are_413(client, method, path):
    big = json.dumps({"sql": "x" * MAX_BODY_BYTES}).encode()
    resp = client.request(method, path, content=big,
                          headers={**AUTH, "content-type": "application/json"})
    assert resp.status_code == 413, resp.text
    streamed = client.request(method, path, content=iter([big[:1000], big[1000:]]),
                              headers={**AUTH, "content-type": "application/json"})
    assert streamed.status_code == 413, streamed.text


def test_the_reference_upload_has_its_own_larger_limit(client):
    rows = "x,y\n" + "".join(f"{i},{i % 7}\n" for i in range(200_000))  # ~2 MB of CSV
    assert len(rows) > MAX_BODY_BYTES
    resp = client.put("/references/m/1", content=rows.encode(),
                      headers={**AUTH, "content-type": "text/csv"})
    assert resp.status_code == 201, resp.text


@pytest.mark.parametrize("name", TRAVERSALS)
def test_names_with_path_traversal_are_refused(client, name, tmp_path):
    for method, template in [("PUT", "/references/{}/1"), ("PUT", "/references/m/{}"),
                             ("GET", "/references/{}/1"), ("GET", "/references/m/{}/profile-spec"),
                             ("GET", "/drift/{}/report"), ("GET", "/audit/actions/{}"),
                             ("GET", "/webhooks/{}"), ("GET", "/rollouts/{}"),
                             ("POST", "/models/{}/versions"), ("GET", "/ui/{}")]:
        resp = client.request(method, template.format(name), content=b"a,b\n1,2\n",
                              headers={**AUTH, "content-type": "text/csv"})
        assert 400 <= resp.status_code < 500, (method, template, name, resp.status_code)
        assert "root:" not in resp.text


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM '../../etc/passwd'",
    "SELECT * FROM read_text('/etc/hostname')", "COPY decisions TO '/tmp/steward-leak.csv'"])
def test_audit_sql_cannot_touch_files(client, sql):
    resp = client.post("/audit/query", json={"sql": sql}, headers=AUTH)
    assert resp.status_code == 400, resp.text
    assert resp.json()["detail"] and "root:" not in resp.text
