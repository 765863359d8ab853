"""Webhook subscriptions in the store: the API process owns them (it owns the DuckDB file).

The signing secret is stored as given, in clear: the delivery service needs the key
itself to compute HMACs. It leaves the API on two answers only (the create answer, once,
and the delivery service's internal view); every other answer and every log line omit it.
`revision` goes up on each disable and enable, so the delivery service can tell a
subscription enabled again after it disabled it from a stale copy of the old state.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from api.store import Store
from steward.webhooks.model import (
    LastDelivery,
    Subscription,
    SubscriptionIn,
    SubscriptionOut,
    new_secret,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS webhooks (
    id VARCHAR PRIMARY KEY,
    url VARCHAR NOT NULL,
    event_types VARCHAR[] NOT NULL,
    format VARCHAR NOT NULL,
    description VARCHAR NOT NULL,
    secret VARCHAR NOT NULL,
    state VARCHAR NOT NULL,
    disabled_reason VARCHAR,
    disabled_at TIMESTAMPTZ,
    revision BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_delivery JSON
);
"""
_COLS = ("id, url, event_types, format, description, secret, state, disabled_reason, "
         "disabled_at, revision, created_at, last_delivery")


class WebhookStore:
    def __init__(self, store: Store,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.clock = clock
        with store.cursor() as cur:
            cur.execute(SCHEMA)

    def create(self, spec: SubscriptionIn) -> Subscription:
        secret = spec.secret.get_secret_value() if spec.secret else new_secret()
        sid = "wh_" + uuid.uuid4().hex
        with self.store.write() as cur:
            cur.execute(f"INSERT INTO webhooks ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, 'active', "
                        "NULL, NULL, 1, ?, NULL)",
                        [sid, spec.url, list(spec.event_types), spec.format, spec.description,
                         secret, self.clock()])
        found = self.get(sid)
        assert found is not None
        return found

    def _rows(self, where: str = "", args: list[Any] | None = None) -> list[Subscription]:
        with self.store.cursor() as cur:
            rows = cur.execute(f"SELECT {_COLS} FROM webhooks {where} ORDER BY created_at, id",
                               args or []).fetchall()
        out = []
        for r in rows:
            doc = dict(zip([c.strip() for c in _COLS.split(",")], r, strict=True))
            doc["last_delivery"] = json.loads(doc["last_delivery"]) \
                if doc["last_delivery"] else None
            out.append(Subscription.model_validate(doc))
        return out

    def all(self) -> list[Subscription]:
        return self._rows()

    def get(self, sid: str) -> Subscription | None:
        found = self._rows("WHERE id = ?", [sid])
        return found[0] if found else None

    def delete(self, sid: str) -> bool:
        with self.store.write() as cur:
            (n,) = cur.execute("DELETE FROM webhooks WHERE id = ?", [sid]).fetchone()
        return bool(n)

    def set_state(self, sid: str, active: bool, reason: str | None = None) -> Subscription | None:
        """Enable, or disable with a reason; bumps the revision either way."""
        with self.store.write() as cur:
            (n,) = cur.execute(
                "UPDATE webhooks SET state = ?, disabled_reason = ?, disabled_at = ?, "
                "revision = revision + 1 WHERE id = ?",
                ["active" if active else "disabled", None if active else reason,
                 None if active else self.clock(), sid]).fetchone()
        return self.get(sid) if n else None

    def record(self, sid: str, last: LastDelivery) -> bool:
        with self.store.write() as cur:
            (n,) = cur.execute("UPDATE webhooks SET last_delivery = ? WHERE id = ?",
                               [last.model_dump_json(), sid]).fetchone()
        return bool(n)


def public(sub: Subscription) -> SubscriptionOut:
    """The subscription without its secret."""
    return SubscriptionOut.model_validate(sub.model_dump(exclude={"secret"}))
