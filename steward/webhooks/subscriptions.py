"""The delivery service's link to the API, which owns the subscriptions.

Trust boundary: the API keeps signing secrets in its store in clear (HMAC needs the key
itself, a hash would not do) and hands them out on one route only,
`GET /internal/webhooks`, to a caller with the admin scope: the delivery service, with
its own admin token (`STEWARD_WEBHOOKS__ADMIN_TOKEN`). Whoever holds an admin token can
create and delete subscriptions anyway; the secret is what receivers trust, so give the
delivery service a token of its own and rotate it like any admin credential.

Subscriptions are cached for `ttl_s`. When the API cannot be reached, a copy younger than
`max_stale_s` is used (deliveries go on through an API restart); older than that the
caller gets `Unavailable` and waits (the sink then holds its Kafka offsets).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import httpx
from pydantic import SecretStr

from steward.errors import Unavailable
from steward.webhooks.model import DeliveryView, LastDelivery, Subscription

log = logging.getLogger(__name__)


class ApiSubscriptions:
    def __init__(self, api_url: str, token: SecretStr | None, *, ttl_s: float = 5.0,
                 max_stale_s: float = 300.0, timeout_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"authorization": f"Bearer {token.get_secret_value()}"} if token else {}
        self._http = httpx.Client(base_url=api_url.rstrip("/"), headers=headers,
                                  timeout=timeout_s, transport=transport)
        self.ttl_s = ttl_s
        self.max_stale_s = max_stale_s
        self.clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, Subscription] | None = None
        self._at = float("-inf")

    def close(self) -> None:
        self._http.close()

    def invalidate(self) -> None:
        with self._lock:
            self._at = float("-inf")

    def current(self) -> dict[str, Subscription]:
        """Every subscription (active or not) by id, with secrets."""
        with self._lock:
            now = self.clock()
            if self._cache is not None and now - self._at < self.ttl_s:
                return self._cache
            try:
                resp = self._http.get("/internal/webhooks")
                resp.raise_for_status()
                view = DeliveryView.model_validate_json(resp.content)
            except (httpx.HTTPError, ValueError) as exc:
                if self._cache is not None and now - self._at < self.max_stale_s:
                    log.warning("subscriptions not refreshed (%s); using a copy %.0fs old",
                                type(exc).__name__, now - self._at)
                    return self._cache
                raise Unavailable(f"cannot fetch webhook subscriptions: "
                                  f"{type(exc).__name__}: {exc}") from exc
            self._cache = {s.id: s for s in view.subscriptions}
            self._at = now
            return self._cache

    def disable(self, subscription_id: str, reason: str) -> int | None:
        """Disable it in the API; its revision after that (None: the API has no such
        subscription any more). Raises `Unavailable` if the API did not answer."""
        try:
            resp = self._http.post(f"/webhooks/{subscription_id}/disable",
                                   json={"reason": reason})
        except httpx.HTTPError as exc:
            raise Unavailable(f"cannot disable webhook {subscription_id}: {exc}") from exc
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise Unavailable(f"disabling webhook {subscription_id}: HTTP {resp.status_code}")
        self.invalidate()
        return int(resp.json()["revision"])

    def report(self, subscription_id: str, last: LastDelivery) -> bool:
        """Tell the API the latest result (shown by `GET /webhooks/{id}`); best effort."""
        try:
            resp = self._http.put(f"/webhooks/{subscription_id}/last-delivery",
                                  content=last.model_dump_json(),
                                  headers={"content-type": "application/json"})
            return resp.status_code in (200, 404)
        except httpx.HTTPError as exc:
            log.debug("last delivery of %s not reported: %s", subscription_id, exc)
            return False
