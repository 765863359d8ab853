"""Facts the gate adds to a proposal before the policies see it.

A proposer knows what it wants (a retraining, its estimated cost); it does not know what
the team has spent this month. The gate asks the API's cost query for that, once per
team and `ttl_s`, and adds `evidence.cost.team_spent_usd` where the proposal did not
bring its own. When the API cannot answer, nothing is added, and the budget policy denies
for want of evidence: the gate fails closed, with the reason on the decision.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

log = logging.getLogger(__name__)
BUDGETED = frozenset({"steward.model.promoted", "steward.retrain.requested"})


def month_start(now: datetime) -> datetime:
    now = now.astimezone(UTC)
    return datetime(now.year, now.month, 1, tzinfo=UTC)


class ApiCostFacts:
    """`facts(input) -> input`: the team's GPU spend this month from `GET /cost`."""

    def __init__(self, api_url: str, token: str | None = None,
                 client: httpx.Client | None = None, ttl_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.api_url = api_url.rstrip("/")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.client = client or httpx.Client(timeout=5.0, headers=headers)
        self.ttl_s, self.clock, self.now = ttl_s, clock, now
        self._cache: dict[str, tuple[float, float]] = {}

    def __call__(self, doc: dict[str, Any]) -> dict[str, Any]:
        action = doc.get("action", {})
        team = action.get("team")
        cost = doc.get("evidence", {}).get("cost", {})
        if action.get("type") not in BUDGETED or not isinstance(team, str) \
                or "team_spent_usd" in cost:
            return doc
        spent = self.spent(team)
        if spent is None:
            return doc
        evidence = {**doc.get("evidence", {}), "cost": {**cost, "team_spent_usd": spent}}
        return {**doc, "evidence": evidence}

    def spent(self, team: str) -> float | None:
        """Allocated GPU dollars of `team` since the start of this month, or None."""
        cached = self._cache.get(team)
        if cached is not None and self.clock() < cached[0]:
            return cached[1]
        now = self.now()
        try:
            resp = self.client.get(f"{self.api_url}/cost", params={
                "since": month_start(now).isoformat(), "until": now.isoformat(),
                "group_by": "team"})
            resp.raise_for_status()
            groups = resp.json()["groups"]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log.warning("team %s: GPU spend unknown, the API's cost query failed (%s)", team, exc)
            return None
        spent = sum(g.get("allocated_usd") or 0.0 for g in groups if g.get("team") == team)
        self._cache[team] = (self.clock() + self.ttl_s, spent)
        return spent
