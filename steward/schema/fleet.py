"""The fleet: which version runs where, in what state, and the stragglers of a rollout.

Inference records are keyed by model/site, while a promotion names many sites of one
model, so the fleet is judged in two stages (like rollouts): `fleet-sightings` turns
records into per (model, site, node, version) buckets keyed by model (`FleetSighting`),
and `fleet` reads them beside the actions topic. It emits a `FleetNode` snapshot when a
node's state, versions or expectation change (and at most every `snapshot_s` else), and a
`steward.fleet.straggler` alert (`FleetStraggler`) once per straggler episode.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from steward.schema.records import Frozen, Hardware, Name, Tier

NodeState = Literal["online", "stale", "offline"]
ExpectKind = Literal["promoted", "rolled_back", "in_progress"]


class FleetSighting(Frozen):
    """One (model, version, site, node) bucket of inference telemetry."""

    schema_: Literal["steward.fleet.sighting.v1"] = Field("steward.fleet.sighting.v1",
                                                          alias="schema")
    model: Name
    version: Name
    site: Name
    tier: Tier
    node: Name | None = None
    start: AwareDatetime
    end: AwareDatetime
    first_ts: AwareDatetime
    last_ts: AwareDatetime
    """Newest record time in the bucket: when the node last said it served this version."""
    records: Annotated[int, Field(ge=0)]
    inferences: Annotated[float, Field(ge=0)]
    errors: Annotated[int, Field(ge=0)] = 0
    hardware: Hardware | None = None
    """The newest hardware profile reported in the bucket."""
    agent_backlog: Annotated[int, Field(ge=0)] | None = None
    """The edge agent's spool backlog stamped on the bucket's newest record."""

    model_config = {"populate_by_name": True}


class Expectation(Frozen):
    """Which versions a site should serve, and the action that said so."""

    versions: list[Name]
    """Accepted versions: one after a promotion or rollback, two while a rollout runs."""
    kind: ExpectKind
    since: AwareDatetime
    """Time of the action (event time)."""
    event_id: str
    event_type: str
    rollout_id: str | None = None


class FleetNode(Frozen):
    """A node of a model's fleet as judged at `as_of` (the processor's wall clock)."""

    schema_: Literal["steward.fleet.node.v1"] = Field("steward.fleet.node.v1", alias="schema")
    model: Name
    site: Name
    node: Name | None = None
    tier: Tier
    state: NodeState
    as_of: AwareDatetime
    silence_s: float
    """as_of - last_seen (never negative: a node's clock ahead of ours counts as now)."""
    first_seen: AwareDatetime
    last_seen: AwareDatetime
    versions: list[Name]
    """Versions seen in the node's telemetry within `stale_after_s` of its last record."""
    version_last_seen: dict[str, AwareDatetime]
    hardware: Hardware | None = None
    agent_backlog: int | None = None
    expected: Expectation | None = None
    straggler: bool = False
    """Serving a version the site's expectation does not accept (after the grace)."""
    stale_after_s: float
    offline_after_s: float

    model_config = {"populate_by_name": True}


class FleetStraggler(Frozen):
    """Data of `steward.fleet.straggler`: a site still serving a version its last
    promotion or rollback replaced, with the parameters the judgement used."""

    schema_: Literal["steward.fleet.straggler.v1"] = Field("steward.fleet.straggler.v1",
                                                           alias="schema")
    model: Name
    site: Name
    expected_versions: list[Name]
    observed_versions: list[Name]
    """Versions the straggling nodes serve that the expectation does not accept."""
    nodes: list[str]
    """Straggling nodes ('' for records that name no node)."""
    expectation: Expectation
    rollout_id: str | None = None
    episode: int
    """1 for the first episode under this expectation, 2 after it resolved and recurred."""
    seen_at: AwareDatetime
    """Record time of the newest telemetry that showed the old version."""
    grace_s: float
    stale_after_s: float
    offline_after_s: float
    reason: str

    model_config = {"populate_by_name": True}
