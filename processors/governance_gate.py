"""The governance gate as a processor: proposals in; decisions and allowed (or denied)
actions out.

Input is the proposals topic keyed by model; each proposal gives one `Decision` on the
decisions topic and one event on the actions topic: the action itself when allowed,
`steward.action.denied` otherwise. Both go out before the proposal's offset is committed,
so no action is emitted without its decision on the log. Ids are deterministic (the
proposal's id and the policy revision), so a replay repeats the same decision and event.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cloudevents.core.v1.event import CloudEvent

from steward import topics as T
from steward.governance.engine import PolicyEngine
from steward.governance.gate import Gate
from steward.stream import Emit, Source

if TYPE_CHECKING:
    import httpx

    from processors.settings import GovernanceSettings


class GovernanceGate:
    name = "governance-gate"
    inputs = (T.PROPOSALS,)

    def __init__(self, gate: Gate, reload_s: float = 5.0) -> None:
        self.gate = gate
        self.reload_s = reload_s
        self._next_reload: datetime | None = None

    def initial_state(self) -> None:
        return None

    def hold(self, state: None) -> dict[str, int]:
        return {}

    def tick(self, state: None, now: datetime) -> tuple[None, list[Emit]]:
        """Every `reload_s`, changed rules on disk become the new revision (the embedded
        engine logs it; a broken change is logged and the old revision kept)."""
        reload = getattr(self.gate.engine, "reload_if_changed", None)
        if reload is not None and (self._next_reload is None or now >= self._next_reload):
            self._next_reload = now + timedelta(seconds=self.reload_s)
            reload()
        return state, []

    def step(self, state: None, record: Any, now: datetime,
             src: Source) -> tuple[None, list[Emit]]:
        if not isinstance(record, CloudEvent):
            return state, []
        outcome = self.gate.decide(record, now)
        key = outcome.decision.model or record.get_attributes().get("partitionkey") or ""
        return state, [Emit(T.DECISIONS, record=outcome.decision, key=key),
                       Emit(T.ACTIONS, outcome.event)]


def gate_from(settings: GovernanceSettings, api_url: str | None = None,
              client: httpx.Client | None = None) -> Gate:
    """The gate as configured: OPA over REST when `opa_url` is set, else regopy over
    `rules_dir` (which must compile: a ConfigError says where it does not); with
    `api_url`, team GPU spend from the API's cost query is added to the input."""
    from steward.governance.facts import ApiCostFacts
    from steward.governance.fleet_facts import with_fleet
    from steward.governance.masking import mask

    engine: PolicyEngine
    if settings.opa_url:
        from steward.governance.opa import OpaEngine

        engine = OpaEngine(settings.opa_url, settings.opa_timeout_s)
    else:
        from steward.governance.embedded import EmbeddedEngine

        engine = EmbeddedEngine(settings.rules_dir)
    facts = ApiCostFacts(api_url, client=client) if api_url else None
    return Gate(engine, mask, list(settings.masked_fields), frozenset(settings.fail_open),
                facts=with_fleet(facts) if facts is not None else None)
