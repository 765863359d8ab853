"""The fleet in the store: the latest snapshot of every node (GET /fleet), and the sink that
keeps it.

The `fleet` processor emits a `FleetNode` snapshot whenever what it says of a node
changes; the store keeps one row per (model, site, node): the snapshot with the newest
`as_of`, except `first_seen`, which is the earliest ever stored, and `version_last_seen`,
merged over every snapshot stored (after a restart the processor rebuilds a node from the
sightings of its recent versions only, so its own first_seen may be later, and its version
history shorter, than what the store already holds).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from api.store import Store, conditions
from steward import topics as T
from steward.schema.fleet import FleetNode
from steward.stream import Source

SCHEMA = """
CREATE TABLE IF NOT EXISTS fleet_nodes (
    model VARCHAR NOT NULL,
    site VARCHAR NOT NULL,
    node VARCHAR NOT NULL,
    tier VARCHAR NOT NULL,
    state VARCHAR NOT NULL,
    straggler BOOLEAN NOT NULL,
    as_of TIMESTAMPTZ NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL,
    agent_backlog BIGINT,
    snapshot JSON NOT NULL,
    stored_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (model, site, node)
);
"""
_COLUMNS = ["model", "site", "node", "tier", "state", "straggler", "as_of", "first_seen",
            "last_seen", "agent_backlog", "snapshot", "stored_at"]
_UPSERT = f"""
INSERT INTO fleet_nodes ({', '.join(_COLUMNS)})
SELECT {', '.join(_COLUMNS)} FROM incoming
ON CONFLICT (model, site, node) DO UPDATE SET
    tier = excluded.tier, state = excluded.state, straggler = excluded.straggler,
    as_of = excluded.as_of, last_seen = excluded.last_seen,
    first_seen = least(fleet_nodes.first_seen, excluded.first_seen),
    agent_backlog = excluded.agent_backlog,
    snapshot = json_merge_patch(excluded.snapshot, json_object('version_last_seen',
        json_merge_patch(fleet_nodes.snapshot -> 'version_last_seen',
                         excluded.snapshot -> 'version_last_seen'))),
    stored_at = excluded.stored_at
WHERE excluded.as_of >= fleet_nodes.as_of
"""


@dataclass(frozen=True)
class FleetQuery:
    model: str | None = None
    site: str | None = None
    tier: str | None = None
    state: str | None = None


class FleetStore:
    """Node snapshots in DuckDB, and what GET /fleet and the fleet gauges read."""

    def __init__(self, store: Store) -> None:
        self.store = store
        with store.cursor() as cur:
            cur.execute(SCHEMA)

    def upsert(self, nodes: Sequence[FleetNode], now: datetime | None = None) -> None:
        """Keep the newest snapshot per node (by `as_of`; out-of-order ones are ignored),
        its `first_seen` the earliest and its `version_last_seen` merged with those kept."""
        if not nodes:
            return
        stamp = now or datetime.now(UTC)
        newest: dict[tuple[str, str, str], FleetNode] = {}
        for n in nodes:  # one row per key per statement: DuckDB's upsert needs it
            key = (n.model, n.site, n.node or "")
            if key not in newest or n.as_of >= newest[key].as_of:
                prev = newest.get(key, n)
                newest[key] = n.model_copy(update={
                    "first_seen": min(n.first_seen, prev.first_seen),
                    "version_last_seen": {**prev.version_last_seen, **n.version_last_seen}})
        frame = pd.DataFrame(
            [[n.model, n.site, n.node or "", n.tier, n.state, n.straggler, n.as_of,
              n.first_seen, n.last_seen, n.agent_backlog, n.model_dump_json(by_alias=True),
              stamp] for n in newest.values()], columns=_COLUMNS)
        with self.store.write() as cur:
            cur.register("incoming", frame)
            try:
                cur.execute(_UPSERT)
            finally:
                cur.unregister("incoming")

    def nodes(self, q: FleetQuery) -> list[dict[str, Any]]:
        """Stored snapshots matching `q`, by model, site and node."""
        filters = {c: getattr(q, c) for c in ("model", "site", "tier", "state")}
        where, args = conditions(filters, "as_of", None, None)
        sql = (f"SELECT snapshot, first_seen FROM fleet_nodes WHERE {where} "
               "ORDER BY model, site, node")
        with self.store.cursor() as cur:
            rows = cur.execute(sql, args).fetchall()
        out = []
        for snap, first in rows:
            doc = json.loads(snap)
            doc["first_seen"] = first.astimezone(UTC).isoformat()
            out.append(doc)
        return out


def summary(nodes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per model: nodes per state, the offline share (offline / all nodes known) and
    the straggling sites. What the gate's fleet facts and the CLI show."""
    out: dict[str, dict[str, Any]] = {}
    for n in nodes:
        s = out.setdefault(n["model"], {"nodes": 0, "online": 0, "stale": 0, "offline": 0,
                                        "stragglers": []})
        s["nodes"] += 1
        s[n["state"]] += 1
        if n["straggler"] and n["site"] not in s["stragglers"]:
            s["stragglers"].append(n["site"])
    for s in out.values():
        s["offline_share"] = s["offline"] / s["nodes"]
        s["stragglers"].sort()
    return out


class FleetNodeSink:
    """Stores the fleet processor's node snapshots: what GET /fleet serves."""

    name = "fleet-sink"
    inputs = (T.FLEET_NODES,)

    def __init__(self, fleet: FleetStore) -> None:
        self.fleet = fleet

    def write(self, items: Sequence[tuple[FleetNode, Source]]) -> None:
        self.fleet.upsert([n for n, _ in items])
