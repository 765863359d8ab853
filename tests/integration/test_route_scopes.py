"""Every route of the API and the collector needs exactly the scope declared for it here.

The tables are the contract (docs/security.md shows the same): a route added to either
app without a line here fails `test_every_route_is_declared`, so nobody ships an
endpoint whose access nobody decided. The boundary test then asks each route, on a real
server with tokens configured: no token -> 401; a token holding only another scope ->
403; a token holding only the declared scope -> past the door (whatever the handler
then says of the empty request: 404, 422, ...). Open routes answer without a token.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry
from starlette.routing import Mount, Route

from api.app import create_app
from api.store import Store
from steward.auth import Authenticator, new_token
from tests.support import Served

OPEN = None
"""No token needed: probes, Prometheus scrapes and the OpenAPI description, which show
no stored record (see docs/security.md)."""
DOCS = {("GET", "/openapi.json"): OPEN, ("GET", "/docs"): OPEN, ("HEAD", "/docs"): OPEN,
        ("GET", "/docs/oauth2-redirect"): OPEN, ("HEAD", "/docs/oauth2-redirect"): OPEN,
        ("GET", "/redoc"): OPEN, ("HEAD", "/redoc"): OPEN, ("HEAD", "/openapi.json"): OPEN}
PROBES = {("GET", "/healthz"): OPEN, ("GET", "/readyz"): OPEN, ("GET", "/metrics"): OPEN}

API_SCOPES: dict[tuple[str, str], str | None] = {
    **DOCS, **PROBES,
    ("GET", "/events"): "read",
    ("GET", "/inferences"): "read",
    ("GET", "/drift"): "read",
    ("GET", "/drift/{verdict_id}/report"): "read",
    ("GET", "/gpu/partitions"): "read",
    ("GET", "/cost"): "read",
    ("GET", "/references"): "read",
    ("GET", "/references/{model}/{version}"): "read",
    ("PUT", "/references/{model}/{version}"): "admin",
    # what an edge agent fetches to profile: its ingest token suffices, and reads nothing else
    ("GET", "/references/{model}/{version}/profile-spec"): "ingest",
    ("POST", "/rollouts"): "admin",
    ("POST", "/rollouts/{rollout_id}/{command}"): "admin",
    ("GET", "/rollouts/{rollout_id}"): "read",
    ("POST", "/models/{model}/versions"): "admin",
    # audit data shows every decision's input: admin, not read
    ("GET", "/audit/actions/{action_id}"): "admin",
    ("GET", "/audit/decisions"): "admin",
    ("GET", "/audit/verify"): "admin",
    ("POST", "/audit/query"): "admin",
    # subscriptions decide where events (and their signing secrets) go
    ("POST", "/webhooks"): "admin",
    ("GET", "/webhooks"): "admin",
    ("GET", "/webhooks/{sid}"): "admin",
    ("DELETE", "/webhooks/{sid}"): "admin",
    ("POST", "/webhooks/{sid}/enable"): "admin",
    ("POST", "/webhooks/{sid}/disable"): "admin",
    ("PUT", "/webhooks/{sid}/last-delivery"): "admin",
    ("GET", "/internal/webhooks"): "admin",
    ("GET", "/fleet"): "read",
    ("GET", "/fleet/split"): "read",
    ("GET", "/fleet/savings"): "read",
    # the live chart page and its script hold no data; the series it draws do
    ("GET", "/ui"): OPEN,
    ("GET", "/ui/charts.js"): OPEN,
    ("GET", "/ui/series"): "read",
}

COLLECTOR_SCOPES: dict[tuple[str, str], str | None] = {
    **DOCS, **PROBES,
    ("POST", "/v1/metrics"): "ingest",
    ("POST", "/v1/traces"): "ingest",
    ("POST", "/v1/logs"): "ingest",
    ("POST", "/v1/inferences"): "ingest",
    ("POST", "/v1/profiles"): "ingest",
    ("POST", "/v1/gpu/dcgm"): "ingest",
    ("POST", "/v1/gpu/samples"): "ingest",
}

SCOPES = ("ingest", "read", "admin")
TOKENS = {scope: new_token(f"only-{scope}", [scope], None) for scope in SCOPES}
AUTH = Authenticator([spec for _, spec in TOKENS.values()])


def routes_of(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route the app answers, mounts as GET on their prefix.
    FastAPI >= 0.16x keeps included routers whole; `iter_route_contexts` flattens them."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is flat already
        contexts: Any = app.routes
    else:
        contexts = iter_route_contexts(app.routes)
    found: set[tuple[str, str]] = set()
    for route in contexts:
        original = getattr(route, "original_route", route)
        if isinstance(original, Mount):
            found.add(("GET", route.path + "/{path}"))
        elif isinstance(original, APIRoute | Route) or route.methods:
            found |= {(m, route.path) for m in route.methods or ()}
        else:
            found.add(("?", str(route.path)))
    return found


@pytest.fixture
def api(tmp_path):
    store = Store(tmp_path / "steward.duckdb")
    served = Served(create_app(store, CollectorRegistry(), {"store": store.ping}, auth=AUTH))
    yield served
    served.stop()
    store.close()


@pytest.fixture
def collector(start_collector):
    return start_collector(tokens=[spec for _, spec in TOKENS.values()])


def check(url: str, table: dict[tuple[str, str], str | None], actual: set) -> list[str]:
    """Every boundary of every route; the list of breaches (empty when all hold)."""
    breaches = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for method, path in sorted(actual):
            if method == "HEAD":
                continue  # answered by the GET route's handler, checked there
            concrete = re.sub(r"\{[^}]+\}", "x", path)
            ask = lambda token, m=method, p=concrete: client.request(  # noqa: E731
                m, p, headers={"authorization": f"Bearer {token}"} if token else {})
            scope = table[(method, path)]
            anonymous = ask(None).status_code
            if scope is None:
                if anonymous in (401, 403):
                    breaches.append(f"{method} {path}: open, answered {anonymous}")
                continue
            if anonymous != 401:
                breaches.append(f"{method} {path}: no token answered {anonymous}, not 401")
            for held, (token, _) in TOKENS.items():
                status = ask(token).status_code
                if held == scope and status in (401, 403):
                    breaches.append(f"{method} {path}: the {scope} token got {status}")
                if held != scope and status != 403:
                    breaches.append(f"{method} {path}: a {held}-only token got {status}, "
                                    f"not 403 ({scope} needed)")
    return breaches


def undeclared(table: dict, actual: set) -> str:
    return ("routes with no declared scope (add them to the table in this test and to "
            f"docs/security.md): {sorted(actual - set(table))}; declared but gone: "
            f"{sorted(set(table) - actual)}")


def test_every_api_route_is_declared_and_needs_its_scope(api):
    actual = routes_of(api.server.config.app)
    assert actual == set(API_SCOPES), undeclared(API_SCOPES, actual)
    assert check(api.url, API_SCOPES, actual) == []


def test_every_collector_route_is_declared_and_needs_its_scope(collector):
    actual = routes_of(collector.server.config.app)
    assert actual == set(COLLECTOR_SCOPES), undeclared(COLLECTOR_SCOPES, actual)
    assert check(collector.url, COLLECTOR_SCOPES, actual) == []
