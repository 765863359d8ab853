"""The fleet facts the gate adds to a promotion: how much of the model's fleet is offline.

A promotion's proposer (the rollout processor) judges canary telemetry; it does not see
the nodes that went quiet. The gate asks `GET /fleet?model=M` (the latest node snapshots
the fleet processor stored) once per model and `ttl_s`, and adds `evidence.fleet =
{"nodes", "offline", "offline_share"}` where the proposal brought none. A model with no
nodes, or an API that does not answer, adds nothing: the fleet policy judges only a
figure it has (logged here when the API failed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from steward.governance.facts import ApiCostFacts

log = logging.getLogger(__name__)
GOVERNED = frozenset({"steward.model.promoted"})
Facts = Callable[[dict[str, Any]], dict[str, Any]]


class ApiFleetFacts:
    """`facts(input) -> input`: the model's fleet offline share from `GET /fleet`."""

    def __init__(self, api_url: str, client: httpx.Client | None = None, ttl_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api_url = api_url.rstrip("/")
        self.client = client or httpx.Client(timeout=5.0)
        self.ttl_s, self.clock = ttl_s, clock
        self._cache: dict[str, tuple[float, dict[str, Any] | None]] = {}

    def __call__(self, doc: dict[str, Any]) -> dict[str, Any]:
        action = doc.get("action", {})
        model = action.get("model")
        evidence = doc.get("evidence", {})
        if action.get("type") not in GOVERNED or not isinstance(model, str) \
                or "fleet" in evidence:
            return doc
        fleet = self.fleet(model)
        if fleet is None:
            return doc
        return {**doc, "evidence": {**evidence, "fleet": fleet}}

    def fleet(self, model: str) -> dict[str, Any] | None:
        """{"nodes", "offline", "offline_share"} of `model`, or None (no nodes, no answer)."""
        cached = self._cache.get(model)
        if cached is not None and self.clock() < cached[0]:
            return cached[1]
        try:
            resp = self.client.get(f"{self.api_url}/fleet", params={"model": model})
            resp.raise_for_status()
            summary = resp.json()["summary"].get(model)
        except (httpx.HTTPError, ValueError, KeyError, AttributeError) as exc:
            log.warning("model %s: fleet offline share unknown, GET /fleet failed (%s)",
                        model, exc)
            return None
        fleet = None if not summary else {k: summary[k] for k in
                                          ("nodes", "offline", "offline_share")}
        self._cache[model] = (self.clock() + self.ttl_s, fleet)
        return fleet


def with_fleet(cost: ApiCostFacts) -> Facts:
    """The cost facts, then the fleet facts from the same API with the same client."""
    fleet = ApiFleetFacts(cost.api_url, client=cost.client)
    return lambda doc: fleet(cost(doc))
