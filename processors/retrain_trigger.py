"""Retraining triggers: persistent drift (k of the last m windows of a site) opens one
`steward.retrain.requested` per model version; later drift joins it until it expires.

Input is the drift verdict topic, keyed by model, so one instance sees every site and
version of a model. "The last m windows" are the last m verdicts of a site; windows
that opened or joined a request are spent, so the next request needs k fresh drifted
ones. The event id depends on the model version and the window that opened the
trigger, so a replay emits the same id.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from steward import topics as T
from steward.schema import EventType, event_id, make_event
from steward.schema.drift import DriftVerdict, RetrainRequested, WindowRef
from steward.stream import Emit, Source

SOURCE = "/steward/processors/retrain-trigger"


class RetrainTarget(BaseModel):
    """What a model's retraining request tells the governance gate about itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    team: str | None = None
    region: str | None = None
    """Where retraining runs: the residency policy checks the sites' data may go there."""
    estimated_usd: float | None = Field(None, ge=0)
    """What one retraining costs on GPUs: the budget policy adds it to the team's spend."""


class TriggerSpec(BaseModel):
    """The debounce rule and how long one request stays open."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    k: int = Field(3, ge=1)
    m: int = Field(5, ge=1)
    cooldown_s: int = Field(24 * 3600, ge=0)
    history_ttl_s: int = Field(7 * 24 * 3600, ge=60)
    """A site silent this long is forgotten (its verdicts no longer held for replay)."""
    targets: dict[str, RetrainTarget] = Field(default_factory=dict)
    """Per model: team, training region and estimated cost, carried to the policies."""


@dataclass
class Open:
    """An open retraining request for one model version."""

    trigger_id: str
    expires: datetime
    sites: set[str]
    windows: list[WindowRef]
    offset: int


SiteKey = tuple[str, str, str]  # model, version, site


@dataclass
class State:
    history: dict[SiteKey, deque[tuple[DriftVerdict, int]]] = field(default_factory=dict)
    open: dict[tuple[str, str], Open] = field(default_factory=dict)
    opened: dict[str, list[datetime]] = field(default_factory=dict)
    """Per model, when its requests opened (event time): the quota policy's count."""
    topic: str = ""


class RetrainTrigger:
    name = "retrain-trigger"
    inputs = (T.DRIFT_VERDICTS,)

    def __init__(self, spec: TriggerSpec) -> None:
        if spec.k > spec.m:
            raise ValueError(f"k ({spec.k}) cannot exceed m ({spec.m})")
        self.spec = spec

    def initial_state(self) -> State:
        return State()

    def step(self, state: State, verdict: Any, now: datetime,
             src: Source) -> tuple[State, list[Emit]]:
        v: DriftVerdict = verdict
        state.topic = src.topic
        hist = state.history.setdefault((v.model, v.version, v.site), deque(maxlen=self.spec.m))
        hist.append((v, src.offset))
        drifted = [(w, o) for w, o in hist if w.drift]
        if len(drifted) < self.spec.k:
            return state, []
        key = (v.model, v.version)
        trigger = state.open.get(key)
        if trigger is not None and v.window.end >= trigger.expires:
            del state.open[key]
            trigger = None
        refs = [_ref(w) for w, _ in drifted]
        hist.clear()  # these windows are spent: the next request needs k fresh ones
        if trigger is not None:  # joins the open request
            trigger.sites.add(v.site)
            trigger.windows.extend(refs)
            return state, []
        return state, [self._open(state, v, refs, drifted[0][1])]

    def _open(self, state: State, v: DriftVerdict, refs: list[WindowRef], offset: int) -> Emit:
        first = refs[0]
        facts = (v.model, v.version, first.site, first.start)
        event_facts_id = event_id(EventType.RETRAIN_REQUESTED, *facts)
        columns = sorted({c for r in refs for c in r.drifted_columns})
        day = v.window.end - timedelta(days=1)
        recent = [t for t in state.opened.get(v.model, []) if t > day]
        state.opened[v.model] = [*recent, v.window.end]
        target = self.spec.targets.get(v.model, RetrainTarget())
        evidence: dict[str, Any] = {"counts": {"retrain_requests_24h": len(recent)}}
        if target.estimated_usd is not None:
            evidence["cost"] = {"estimated_usd": target.estimated_usd}
        data = RetrainRequested(
            model=v.model, version=v.version, trigger_id=event_facts_id, sites=[v.site],
            windows=refs, drifted_columns=columns, method=v.decided_by,
            rule=f"{self.spec.k} of the last {self.spec.m} windows drifted",
            cooldown_s=self.spec.cooldown_s, team=target.team,
            target={"region": target.region} if target.region else None, evidence=evidence)
        state.open[(v.model, v.version)] = Open(
            event_facts_id, v.window.end + timedelta(seconds=self.spec.cooldown_s), {v.site},
            list(refs), offset)
        event = make_event(EventType.RETRAIN_REQUESTED, source=SOURCE,
                           subject=f"{v.model}/{v.version}", data=data, key=v.model,
                           time=v.window.end, facts=facts)
        return Emit(T.PROPOSALS, event)

    def tick(self, state: State, now: datetime) -> tuple[State, list[Emit]]:
        """Forget sites silent for `history_ttl_s` and requests past their expiry."""
        ttl = timedelta(seconds=self.spec.history_ttl_s)
        for key, hist in list(state.history.items()):
            if not hist or now - hist[-1][0].window.end > ttl:
                del state.history[key]
        for key, trigger in list(state.open.items()):
            if now >= trigger.expires:
                del state.open[key]
        for model, times in list(state.opened.items()):
            state.opened[model] = [t for t in times if now - t < timedelta(days=1)]
            if not state.opened[model]:
                del state.opened[model]
        return state, []

    def hold(self, state: State) -> dict[str, int]:
        """Keep the last m verdicts of every site and the verdicts behind open requests
        replayable, so a restart rebuilds the same state and emits nothing new."""
        offsets = [o for hist in state.history.values() for _, o in hist]
        offsets += [t.offset for t in state.open.values()]
        return {state.topic: min(offsets)} if offsets else {}


def _ref(v: DriftVerdict) -> WindowRef:
    return WindowRef(site=v.site, start=v.window.start.isoformat(),
                     end=v.window.end.isoformat(), verdict_id=v.id,
                     drifted_columns=v.evidently.drifted_columns if v.decided_by == "evidently"
                     else (v.calibrated.drifted_columns if v.calibrated else []))
