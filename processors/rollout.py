"""Progressive rollouts: declarations, samples and the gate's answers in; proposals out.

Inputs, all keyed by model with the same partition count, so one partition's state sees
everything about a model: the rollouts topic (declarations, resume/abort commands), the
rollout samples topic (per-site buckets from `rollout-samples`), the rollout usage topic
(GPU partition windows per version from `rollout-usage`), the drift verdicts and the
actions topic (the gate's allowed actions and denials). Each rollout is a state machine
(`processors/canary/machine.py`); proposals go to the proposals topic, and the gate
decides; every analysis run goes to the rollout analysis topic.

Recovery is by replay: `hold` keeps, per topic, the lowest offset an open rollout still
needs, so the runner never commits past its declaration, its first sample or the first
answer it got; after a restart the same records rebuild the same phase. Ids are
deterministic (rollout, step, run index), so the proposals a replay makes again carry
the ids already sent, and the gate's answers already on the actions topic settle them.
Samples that come before their declaration (topics interleave freely) wait a while in
an unclaimed buffer; answers that come before their proposal are remembered by id.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel, ConfigDict, Field

from processors.canary import autostart as A
from processors.canary import machine as M
from steward import topics as T
from steward.schema import EventType
from steward.schema.drift import DriftVerdict
from steward.schema.rollout import (
    RolloutAnalysis,
    RolloutCommand,
    RolloutMessage,
    RolloutSpec,
    VersionSamples,
    VersionUsage,
)
from steward.stream import Emit, Source

ACTION_TYPES = frozenset({EventType.ROLLOUT_STEP_ADVANCED, EventType.MODEL_PROMOTED,
                          EventType.MODEL_ROLLED_BACK, EventType.ROLLOUT_PAUSED})


class RolloutSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    unclaimed_s: int = Field(900, ge=0)
    """How long samples of a model with no open rollout are kept, in event time (for a
    declaration read after its first samples)."""
    templates: dict[str, A.RolloutTemplate] = Field(default_factory=dict)
    """Per model: how a version registered for a retraining request is rolled out
    (`processors/canary/autostart.py`); a model without one starts nothing by itself."""
    retrain_wait_s: int = Field(7 * 24 * 3600, ge=0)
    """How long a retraining request waits for its version (and a version for its
    request) before it is forgotten."""


@dataclass
class State:
    rollouts: dict[str, M.Rollout] = field(default_factory=dict)
    unclaimed: dict[str, deque[tuple[Side, str, int]]] = field(default_factory=dict)
    answers: dict[str, tuple[bool, str]] = field(default_factory=dict)
    """Gate answers by proposal id: (allowed, reasons)."""
    by_model: dict[str, list[str]] = field(default_factory=dict)
    """Rollout ids per model: a sample looks at its model's rollouts only."""
    loop: A.Loop = field(default_factory=A.Loop)
    promoted: dict[str, list[datetime]] = field(default_factory=dict)
    """Per model, when its promotions were let out: the quota policy's count."""


class Rollouts:
    name = "rollout"
    inputs = (T.ROLLOUTS, T.ROLLOUT_SAMPLES, T.ROLLOUT_USAGE, T.DRIFT_VERDICTS, T.ACTIONS)

    def __init__(self, settings: RolloutSettings | None = None) -> None:
        self.settings = settings or RolloutSettings()

    def initial_state(self) -> State:
        return State()

    def hold(self, state: State) -> dict[str, int]:
        low: dict[str, int] = {}
        for r in state.rollouts.values():
            if r.phase in M.TERMINAL:
                continue
            for topic, offset in r.offsets.items():
                low[topic] = min(offset, low.get(topic, offset))
        for topic, offset in A.hold(state.loop).items():
            low[topic] = min(offset, low.get(topic, offset))
        return low

    def step(self, state: State, record: Any, now: datetime,
             src: Source) -> tuple[State, list[Emit]]:
        if isinstance(record, RolloutMessage):
            events = self._message(state, record, src)
        elif isinstance(record, VersionSamples | VersionUsage | DriftVerdict):
            events = self._samples(state, record, src)
        elif isinstance(record, CloudEvent):
            events = self._answer(state, record, src)
        else:
            events = []
        return state, _emits(events)

    def tick(self, state: State, now: datetime) -> tuple[State, list[Emit]]:
        """Close intervals that went quiet (every site silent): wall clock, one interval
        past end plus grace."""
        A.expire(state.loop, now, self.settings.retrain_wait_s)
        events = []
        for r in state.rollouts.values():
            events += self._drive(state, r, now)
        return state, _emits(events)

    def _message(self, state: State, msg: RolloutMessage, src: Source) -> list[Any]:
        if msg.spec is not None:
            return self._declare(state, msg.spec, src)
        if msg.registered is not None:
            return self._registered(state, msg.registered, src)
        cmd: RolloutCommand = msg.command  # type: ignore[assignment]
        r = state.rollouts.get(cmd.rollout_id)
        if r is None or r.phase in M.TERMINAL:
            return []
        r.touch(src.topic, src.offset)
        if cmd.command == "resume":
            M.resume(r, cmd.at)
            return self._drive(state, r)
        if r.pending is not None and r.pending.target == "aborted":
            return []
        return [M.propose(r, EventType.MODEL_ROLLED_BACK, "aborted", None,
                          f"aborted: {cmd.reason}".rstrip(": "), time=cmd.at)]

    def _declare(self, state: State, spec: RolloutSpec, src: Source) -> list[Any]:
        if spec.rollout_id in state.rollouts:
            return []  # a redelivered declaration
        r = M.Rollout(spec=spec, anchor=spec.declared_at)
        r.touch(src.topic, src.offset)
        state.rollouts[spec.rollout_id] = r
        state.by_model.setdefault(spec.model, []).append(spec.rollout_id)
        for s, topic, offset in state.unclaimed.get(spec.model, ()):
            if r.add(s):
                r.touch(topic, offset)
        return self._drive(state, r)

    def _registered(self, state: State, v: Any, src: Source) -> list[Any]:
        if v.retrain_trigger_id is None:
            return []
        state.loop.registered.setdefault(v.retrain_trigger_id, (v, src.topic, src.offset))
        made = A.pair(state.loop, v.retrain_trigger_id, self.settings.templates)
        return [made] if made is not None else []

    def _loop(self, state: State, event: CloudEvent, data: dict[str, Any],
              src: Source) -> list[Any] | None:
        """Answers that close the loop: an allowed retraining request waits for its
        version; an allowed rollout start declares the rollout. None: not one of them."""
        kind = event.get_type()
        if kind == EventType.RETRAIN_REQUESTED:
            retrain = A.retrain_of(data, _time(event), src.topic, src.offset)
            if retrain is None or retrain.trigger_id in state.loop.retrains:
                return []
            state.loop.retrains[retrain.trigger_id] = retrain
            made = A.pair(state.loop, retrain.trigger_id, self.settings.templates)
            return [made] if made is not None else []
        if kind == EventType.MODEL_PROMOTED:
            at, times = _time(event), state.promoted.setdefault(str(data.get("model")), [])
            times[:] = [t for t in times if at - t < timedelta(days=1)] + [at]
            return None
        if kind == EventType.ROLLOUT_STARTED:
            A.settle(state.loop, str(data.get("retrain_trigger_id")))
            return self._declare(state, RolloutSpec.model_validate(data["spec"]), src)
        proposal = data.get("proposal")
        if kind == EventType.ACTION_DENIED and data.get("proposal_type") == \
                EventType.ROLLOUT_STARTED and isinstance(proposal, dict):
            A.settle(state.loop, str(proposal.get("retrain_trigger_id")))
            return []
        return None

    def _samples(self, state: State, s: Side, src: Source) -> list[Any]:
        """Samples, usage windows and drift verdicts alike: kept by the model's rollouts
        that judge on them, and a while for one not declared yet."""
        buf = state.unclaimed.setdefault(s.model, deque())
        buf.append((s, src.topic, src.offset))
        horizon = _end(s) - timedelta(seconds=self.settings.unclaimed_s)
        while buf and _end(buf[0][0]) < horizon:
            buf.popleft()
        events = []
        for rid in state.by_model.get(s.model, ()):
            r = state.rollouts[rid]
            if r.phase in M.TERMINAL:
                continue
            if r.add(s):
                r.touch(src.topic, src.offset)
                events += self._drive(state, r)
        return events

    def _answer(self, state: State, event: CloudEvent, src: Source) -> list[Any]:
        """The gate's allowed action (same id as the proposal) or its denial."""
        kind, data = event.get_type(), event.get_data()
        if not isinstance(data, dict):
            return []
        closed = self._loop(state, event, data, src)
        if closed is not None:
            return closed
        if kind in ACTION_TYPES and "rollout_id" in data:
            rid, answer = data["rollout_id"], (event.get_id(), True, "")
        elif kind == EventType.ACTION_DENIED and isinstance(data.get("proposal"), dict) \
                and "rollout_id" in data["proposal"]:
            rid = data["proposal"]["rollout_id"]
            answer = (data.get("proposal_id", ""), False, "; ".join(data.get("reasons", [])))
        else:
            return []
        state.answers[answer[0]] = answer[1:]
        r = state.rollouts.get(rid)
        if r is None or r.phase in M.TERMINAL:
            return []
        r.touch(src.topic, src.offset)
        return self._drive(state, r)

    def _drive(self, state: State, r: M.Rollout, now: datetime | None = None) -> list[Any]:
        """Settle answered proposals and judge closed intervals, until neither moves."""
        out: list[Any] = []
        since = (r.watermark or r.anchor) - timedelta(days=1)
        r.context = {"counts": {"promotions_24h": sum(
            since <= t for t in state.promoted.get(r.spec.model, ()))}}
        while True:
            if r.pending is not None:
                answer = state.answers.get(r.pending.proposal_id)
                if answer is None:
                    return out
                M.settle(r, *answer)
                if r.phase in M.TERMINAL:
                    r.samples, r.usage, r.verdicts = [], [], []
                    return out
            made = M.advance(r, now)
            out += made
            if not made:
                return out


Side = VersionSamples | VersionUsage | DriftVerdict


def _end(x: Side) -> datetime:
    return x.window.end if isinstance(x, DriftVerdict) else x.end


def _emits(made: list[Any]) -> list[Emit]:
    """Proposals to the gate; analysis runs, keyed by model, to the analysis topic."""
    return [Emit(T.ROLLOUT_ANALYSIS, record=x, key=x.model) if isinstance(x, RolloutAnalysis)
            else Emit(T.PROPOSALS, x) for x in made]


def _time(event: CloudEvent) -> datetime:
    t = event.get_time()
    return t if isinstance(t, datetime) else datetime.fromisoformat(str(t))
