"""The governance gate as a processor: proposals in; decisions and allowed (or denied)
actions out.

Input is the proposals topic keyed by model; each proposal gives one `Decision` on the
decisions topic and one event on the actions topic: the action itself when allowed,
`steward.action.denied` otherwise. Both go out before the proposal's offset is committed,
so no action is emitted without its decision on the log. Ids are deterministic (the
proposal's id and the policy revision), so a replay repeats the same decision and event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cloudevents.core.v1.event import CloudEvent

from steward import topics as T
from steward.governance.gate import Gate
from steward.stream import Emit, Source


class GovernanceGate:
    name = "governance-gate"
    inputs = (T.PROPOSALS,)

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    def initial_state(self) -> None:
        return None

    def hold(self, state: None) -> dict[str, int]:
        return {}

    def tick(self, state: None, now: datetime) -> tuple[None, list[Emit]]:
        return state, []

    def step(self, state: None, record: Any, now: datetime,
             src: Source) -> tuple[None, list[Emit]]:
        if not isinstance(record, CloudEvent):
            return state, []
        outcome = self.gate.decide(record, now)
        key = outcome.decision.model or record.get_attributes().get("partitionkey") or ""
        return state, [Emit(T.DECISIONS, record=outcome.decision, key=key),
                       Emit(T.ACTIONS, outcome.event)]
