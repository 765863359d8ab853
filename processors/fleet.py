"""The fleet: node states and versions from sightings, stragglers against the actions.

Inputs, both keyed by model with the same partition count (so one partition's state holds
a model's whole fleet and the actions about it): the fleet sightings topic (buckets from
`fleet-sightings`) and the actions topic (promotions and rollbacks the gate let out).

Node state is judged on the wall clock passed in (`now`): silence = now - last_seen, where
last_seen is the newest *record time* the node reported. Record time, not arrival time,
so that a replay after a restart, or an edge agent delivering hours of spooled backlog,
says when the node was last alive, not when its data happened to arrive; the wall clock,
not the watermark, because silence is exactly the absence of new event time. A node is
`online` below `stale_after_s` of silence, `stale` below `offline_after_s`, `offline`
beyond. A `FleetNode` snapshot goes out whenever what it says changes (state, versions,
expectation, straggler, hardware, backlog) and at most every `snapshot_s` otherwise.

Stragglers are judged on event time only: after a promotion or rollback at time T, a node
of a site it names that reports, after T + `straggler_grace_s` and within its recent
versions, a version the action does not accept is a straggler. One
`steward.fleet.straggler` alert per episode: it opens when the first node straggles and
closes when none does (the old version left the node's recent versions); the event id
is (model, site, action id, episode), so a replay emits the same ids.

Recovery by replay: `hold` keeps, per live node, the offset of the oldest sighting still
needed for its recent versions (each version within `stale_after_s` of its newest record,
at the sighting that carried that version's newest record time), and each site's current
expectation, so after a restart the same records rebuild last_seen, the recent versions,
the straggler judgement and the same alert ids. Older history is not replayed: first_seen
and version_last_seen after a restart start from the replayed sightings (the store keeps
the earliest first_seen and merges version_last_seen), and hardware and backlog from the
newest replayed sighting that carries them. Nodes silent for `forget_after_s` are dropped
(their last snapshot stays in the store).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel, ConfigDict, Field

from processors.fleet_expect import expectations
from steward import topics as T
from steward.schema import EventType, make_event
from steward.schema.fleet import (
    Expectation,
    FleetNode,
    FleetSighting,
    FleetStraggler,
    NodeState,
)
from steward.schema.records import Hardware
from steward.stream import Emit, Source

SOURCE = "/steward/processors/fleet"
NodeKey = tuple[str, str, str]
SiteKey = tuple[str, str]


class FleetSpec(BaseModel):
    """Silences, the straggler grace and snapshot pacing (`STEWARD_FLEET__*`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stale_after_s: float = Field(60.0, gt=0)
    offline_after_s: float = Field(300.0, gt=0)
    straggler_grace_s: float = Field(120.0, ge=0)
    """Time a site has after a promotion or rollback to switch before it is a straggler."""
    snapshot_s: float = Field(60.0, gt=0)
    """A node whose snapshot would say nothing new is re-sent at most this often."""
    forget_after_s: float = Field(86_400.0, gt=0)


def state_of(silence_s: float, spec: FleetSpec) -> NodeState:
    if silence_s < spec.stale_after_s:
        return "online"
    return "stale" if silence_s < spec.offline_after_s else "offline"


@dataclass
class Node:
    model: str
    site: str
    node: str
    tier: str
    first_seen: datetime
    last_seen: datetime
    versions: dict[str, datetime] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)
    """Per version, the offset of the sighting that carried its newest record time."""
    hardware: Hardware | None = None
    backlog: tuple[datetime, int] | None = None
    sent: tuple[Any, ...] | None = None
    sent_at: datetime | None = None
    """Wall clock of the last snapshot sent."""
    sent_seen: datetime | None = None
    """The node's last_seen that snapshot carried (no newer data: nothing to refresh)."""

    def add(self, s: FleetSighting, offset: int) -> None:
        self.tier = s.tier
        self.first_seen = min(self.first_seen, s.first_ts)
        self.last_seen = max(self.last_seen, s.last_ts)
        if s.version not in self.versions or s.last_ts >= self.versions[s.version]:
            self.versions[s.version], self.offsets[s.version] = s.last_ts, offset
        if s.hardware is not None:
            self.hardware = s.hardware
        if s.agent_backlog is not None and (self.backlog is None or s.last_ts >= self.backlog[0]):
            self.backlog = (s.last_ts, s.agent_backlog)

    def recent(self, spec: FleetSpec) -> dict[str, datetime]:
        """Versions seen within `stale_after_s` of the node's newest record."""
        since = self.last_seen - timedelta(seconds=spec.stale_after_s)
        return {v: ts for v, ts in self.versions.items() if ts >= since}

    def needs(self, spec: FleetSpec) -> int:
        """The lowest sighting offset a replay must start from to rebuild the node's recent
        versions (and so its last_seen and straggler judgement) as they are now."""
        return min(self.offsets[v] for v in self.recent(spec))


@dataclass
class Site:
    expect: Expectation | None = None
    offset: int | None = None
    episode: int = 0
    open: bool = False


@dataclass
class State:
    nodes: dict[NodeKey, Node] = field(default_factory=dict)
    sites: dict[SiteKey, Site] = field(default_factory=dict)
    by_site: dict[SiteKey, set[NodeKey]] = field(default_factory=dict)
    topics: dict[str, str] = field(default_factory=dict)
    """Input kind ('sightings', 'actions') -> the full topic name, for `hold`."""


class Fleet:
    """The processor: sightings and actions in; node snapshots and straggler alerts out."""

    name = "fleet"
    inputs = (T.FLEET_SIGHTINGS, T.ACTIONS)

    def __init__(self, spec: FleetSpec | None = None) -> None:
        self.spec = spec or FleetSpec()

    def initial_state(self) -> State:
        return State()

    def hold(self, state: State) -> dict[str, int]:
        out: dict[str, int] = {}
        nodes = [n.needs(self.spec) for n in state.nodes.values()]
        sites = [s.offset for s in state.sites.values() if s.offset is not None]
        for kind, offsets in (("sightings", nodes), ("actions", sites)):
            if offsets and kind in state.topics:
                out[state.topics[kind]] = min(offsets)
        return out

    def step(self, state: State, record: Any, now: datetime,
             src: Source) -> tuple[State, list[Emit]]:
        if isinstance(record, FleetSighting):
            state.topics["sightings"] = src.topic
            return state, self._sighting(state, record, now, src.offset)
        if isinstance(record, CloudEvent):
            found = expectations(record)
            if found:
                state.topics["actions"] = src.topic
            emits: list[Emit] = []
            for model, site, expect in found:
                emits += self._expect(state, (model, site), expect, now, src.offset)
            return state, emits
        return state, []

    def tick(self, state: State, now: datetime) -> tuple[State, list[Emit]]:
        forget = timedelta(seconds=self.spec.forget_after_s)
        emits: list[Emit] = []
        for key, node in list(state.nodes.items()):
            if now - node.last_seen >= forget:
                del state.nodes[key]
                state.by_site[key[:2]].discard(key)
                continue
            emits += self._snapshot(state, node, now)
        return state, emits

    def _sighting(self, state: State, s: FleetSighting, now: datetime,
                  offset: int) -> list[Emit]:
        key = (s.model, s.site, s.node or "")
        node = state.nodes.get(key)
        if node is None:
            node = state.nodes[key] = Node(s.model, s.site, s.node or "", s.tier, s.first_ts,
                                           s.last_ts)
            state.by_site.setdefault(key[:2], set()).add(key)
        node.add(s, offset)
        return self._judge_site(state, key[:2], now)

    def _expect(self, state: State, key: SiteKey, expect: Expectation, now: datetime,
                offset: int) -> list[Emit]:
        site = state.sites.setdefault(key, Site())
        if site.expect is not None and (site.expect.event_id == expect.event_id
                                        or expect.since < site.expect.since):
            return []  # a duplicate, or an older action read late: the newer one stands
        state.sites[key] = Site(expect=expect, offset=offset)
        return self._judge_site(state, key, now)

    def _judge_site(self, state: State, key: SiteKey, now: datetime) -> list[Emit]:
        emits = self._straggler(state, key)
        for nkey in sorted(state.by_site.get(key, ())):
            emits += self._snapshot(state, state.nodes[nkey], now)
        return emits

    def _old(self, node: Node, expect: Expectation) -> dict[str, datetime]:
        """Versions the node served after the grace that the expectation does not accept."""
        after = expect.since + timedelta(seconds=self.spec.straggler_grace_s)
        return {v: ts for v, ts in node.recent(self.spec).items()
                if v not in expect.versions and ts >= after}

    def _straggler(self, state: State, key: SiteKey) -> list[Emit]:
        site = state.sites.get(key)
        if site is None or site.expect is None:
            return []
        old = {n: self._old(state.nodes[n], site.expect) for n in state.by_site.get(key, ())}
        old = {n: v for n, v in old.items() if v}
        if not old:
            site.open = False
            return []
        if site.open:
            return []
        site.open, site.episode = True, site.episode + 1
        return [self._alert(key, site, old)]

    def _alert(self, key: SiteKey, site: Site, old: dict[NodeKey, dict[str, datetime]]) -> Emit:
        expect = site.expect
        assert expect is not None
        versions = sorted({v for vs in old.values() for v in vs})
        seen_at = max(ts for vs in old.values() for ts in vs.values())
        nodes = sorted(n[2] for n in old)
        reason = (f"{key[0]} at {key[1]}: {len(nodes)} node(s) still serve "
                  f"{', '.join(versions)} {self.spec.straggler_grace_s:g} s after "
                  f"{expect.event_type} accepted only {', '.join(expect.versions)}")
        data = FleetStraggler(
            model=key[0], site=key[1], expected_versions=expect.versions,
            observed_versions=versions, nodes=nodes, expectation=expect,
            rollout_id=expect.rollout_id, episode=site.episode, seen_at=seen_at,
            grace_s=self.spec.straggler_grace_s, stale_after_s=self.spec.stale_after_s,
            offline_after_s=self.spec.offline_after_s, reason=reason)
        event = make_event(EventType.FLEET_STRAGGLER, source=SOURCE,
                           subject=f"{key[0]}/{key[1]}", data=data, key=key[0], time=seen_at,
                           facts=(key[0], key[1], expect.event_id, site.episode))
        return Emit(T.ALERTS, event)

    def _snapshot(self, state: State, node: Node, now: datetime) -> list[Emit]:
        site = state.sites.get((node.model, node.site), Site())
        silence = max(0.0, (now - node.last_seen).total_seconds())
        nstate = state_of(silence, self.spec)
        versions = sorted(node.recent(self.spec))
        straggler = site.expect is not None and bool(self._old(node, site.expect))
        backlog = node.backlog[1] if node.backlog else None
        sig = (nstate, tuple(versions), straggler, site.expect.event_id if site.expect else None,
               node.hardware, backlog, node.tier)
        if sig == node.sent and node.sent_at is not None and (
                node.sent_seen == node.last_seen
                or now - node.sent_at < timedelta(seconds=self.spec.snapshot_s)):
            return []
        node.sent, node.sent_at, node.sent_seen = sig, now, node.last_seen
        snap = FleetNode(
            model=node.model, site=node.site, node=node.node or None, tier=node.tier,  # type: ignore[arg-type]
            state=nstate, as_of=now, silence_s=silence, first_seen=node.first_seen,
            last_seen=node.last_seen, versions=versions,
            version_last_seen=dict(sorted(node.versions.items())), hardware=node.hardware,
            agent_backlog=backlog, expected=site.expect, straggler=straggler,
            stale_after_s=self.spec.stale_after_s, offline_after_s=self.spec.offline_after_s)
        return [Emit(T.FLEET_NODES, record=snap, key=node.model)]
