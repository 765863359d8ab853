"""GPU partition usage in the store, and the cost queries over it (GET /gpu/partitions,
GET /cost, Prometheus gauges of partitions and of cost over a trailing period).

Cost is computed at query time from the stored usage windows and the price
catalogue, so a corrected price re-prices history. A window's card cost is
$/GPU-hour x its hours; a partition is allocated its share (compute_share) and used
what its busy share of the card says (time-sliced copies: the device's use split
equally, so it counts once). Capacity of a card no partition held in a window is
`__idle__`, as OpenCost shows it. Cost per 1,000 inferences joins the stored
inference counts (weighted by 1 / sample_rate) of the same model/version/site.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from api.store import Store, conditions
from steward import topics as T
from steward.gpu.prices import Catalogue
from steward.schema.gpu import PartitionUsage
from steward.stream import Source

SCHEMA = """
CREATE TABLE IF NOT EXISTS gpu_usage (
    id VARCHAR PRIMARY KEY, partition VARCHAR NOT NULL, window_start TIMESTAMPTZ NOT NULL,
    window_end TIMESTAMPTZ NOT NULL, site VARCHAR NOT NULL, tier VARCHAR NOT NULL,
    node VARCHAR NOT NULL, gpu_uuid VARCHAR NOT NULL, card VARCHAR NOT NULL,
    profile VARCHAR NOT NULL, model VARCHAR, version VARCHAR, team VARCHAR,
    compute_share DOUBLE NOT NULL, compute_use DOUBLE, compute_card_use DOUBLE,
    mem_use_max DOUBLE, values_copied BOOLEAN NOT NULL, device_compute_use DOUBLE,
    usage JSON NOT NULL, stored_at TIMESTAMPTZ NOT NULL
);
"""
COLUMNS = ["id", "partition", "window_start", "window_end", "site", "tier", "node", "gpu_uuid",
           "card", "profile", "model", "version", "team", "compute_share", "compute_use",
           "compute_card_use", "mem_use_max", "values_copied", "device_compute_use", "usage",
           "stored_at"]
GROUPS = ("model", "version", "team", "site", "tier")
IDLE = "__idle__"

_COST = """
WITH u AS (
    SELECT g.*, coalesce(ps.usd, pd.usd) * (epoch(window_end) - epoch(window_start)) / 3600
           AS card_usd
    FROM gpu_usage g
    LEFT JOIN prices ps ON ps.card = g.card AND ps.site = g.site
    LEFT JOIN prices pd ON pd.card = g.card AND pd.site IS NULL
    WHERE window_start >= ? AND window_start < ?)
SELECT {cols}, sum(card_usd * compute_share) AS allocated_usd,
       sum(card_usd * CASE WHEN values_copied THEN device_compute_use * compute_share
                          ELSE compute_card_use END) AS used_usd,
       sum((epoch(window_end) - epoch(window_start)) * compute_share) / 3600 AS gpu_hours,
       count(*) FILTER (WHERE card_usd IS NULL) AS unpriced_windows
FROM u GROUP BY ALL ORDER BY ALL
"""
_IDLE = """
WITH u AS (
    SELECT g.gpu_uuid, g.window_start, any_value(coalesce(ps.usd, pd.usd)
           * (epoch(window_end) - epoch(window_start)) / 3600) AS card_usd,
           sum(compute_share) AS held
    FROM gpu_usage g
    LEFT JOIN prices ps ON ps.card = g.card AND ps.site = g.site
    LEFT JOIN prices pd ON pd.card = g.card AND pd.site IS NULL
    WHERE window_start >= ? AND window_start < ?
    GROUP BY g.gpu_uuid, g.window_start)
SELECT coalesce(sum(card_usd * greatest(0, 1 - held)), 0) FROM u
"""


class GpuStore:
    """Usage windows stored once by id; cost grouped on demand."""

    def __init__(self, store: Store, catalogue: Catalogue | None = None) -> None:
        self.store = store
        self.catalogue = catalogue or Catalogue()
        with store.cursor() as cur:
            cur.execute(SCHEMA)

    def insert(self, rows: Sequence[PartitionUsage]) -> int:
        if not rows:
            return 0
        now = datetime.now(UTC)
        frame = pd.DataFrame([[
            u.id, u.partition, u.window.start, u.window.end, u.site, u.tier, u.node, u.gpu_uuid,
            u.card, u.profile, u.model, u.version, u.team, u.compute_share, u.compute_use,
            u.compute_card_use, u.mem_use_max, u.values_copied, u.device_compute_use,
            u.model_dump_json(by_alias=True), now] for u in rows], columns=COLUMNS,
        ).drop_duplicates(subset=["id"])
        return self.store.insert_frame("gpu_usage", frame)

    def partitions(self, since: datetime | None, until: datetime | None,
                   filters: dict[str, str | None]) -> list[dict[str, Any]]:
        """The latest window of every partition in the range (filters are equalities)."""
        where, args = conditions(filters, "window_start", since, until)
        sql = (f"SELECT usage FROM gpu_usage WHERE {where} QUALIFY row_number() "
               "OVER (PARTITION BY partition ORDER BY window_start DESC) = 1 ORDER BY partition")
        with self.store.cursor() as cur:
            return [json.loads(r) for (r,) in cur.execute(sql, args).fetchall()]

    def cost(self, group_by: Sequence[str], since: datetime, until: datetime) -> dict[str, Any]:
        """Allocated, used and idle cost, efficiency and GPU-hours per group; `__idle__` for
        capacity no partition held; cost per 1,000 inferences where the group has a model."""
        cols = [c for c in GROUPS if c in group_by] or ["team"]
        prices = pd.DataFrame(self.catalogue.table(), columns=["card", "site", "usd"])
        with self.store.cursor() as cur:
            cur.register("prices", prices)
            frame = cur.execute(_COST.format(cols=", ".join(cols)), [since, until]).df()
            [(idle,)] = cur.execute(_IDLE, [since, until]).fetchall()
            counts = self._inferences(cur, cols, since, until)
            cur.unregister("prices")
        groups = [self._group(row, cols, counts) for row in frame.to_dict("records")]
        return {"group_by": cols, "since": since, "until": until, "groups": groups,
                IDLE: {"idle_usd": float(idle)}}

    @staticmethod
    def _inferences(cur: Any, cols: list[str], since: datetime,
                    until: datetime) -> dict[tuple[Any, ...], float]:
        keys = [c for c in cols if c in ("model", "version", "site", "tier")]
        if "model" not in keys:
            return {}
        rows = cur.execute(
            f"SELECT {', '.join(keys)}, sum(1 / sample_rate) FROM inferences "
            f"WHERE ts >= ? AND ts < ? GROUP BY ALL", [since, until]).fetchall()
        return {tuple(r[:-1]): float(r[-1]) for r in rows}

    @staticmethod
    def _group(row: dict[str, Any], cols: list[str],
               counts: dict[tuple[Any, ...], float]) -> dict[str, Any]:
        allocated, used = row["allocated_usd"], row["used_usd"]
        allocated = None if pd.isna(allocated) else float(allocated)
        used = None if pd.isna(used) else float(used)
        key = tuple(row[c] for c in cols if c in ("model", "version", "site", "tier"))
        n = counts.get(key)
        return {
            **{c: (None if pd.isna(row[c]) else row[c]) for c in cols},
            "allocated_usd": allocated, "used_usd": used,
            "idle_usd": None if None in (allocated, used) else allocated - used,
            "efficiency": used / allocated if allocated and used is not None else None,
            "gpu_hours": float(row["gpu_hours"]), "unpriced_windows": int(row["unpriced_windows"]),
            "inferences": n,
            "usd_per_1k_inferences": allocated / n * 1000 if allocated and n else None,
        }


class GpuUsageSink:
    """Stores the usage windows the gpu-usage processor emits."""

    name = "gpu-usage-sink"
    inputs = (T.GPU_USAGE,)

    def __init__(self, gpu: GpuStore) -> None:
        self.gpu = gpu

    def write(self, items: Sequence[tuple[PartitionUsage, Source]]) -> None:
        self.gpu.insert([u for u, _ in items])


class GpuGauges:
    """Prometheus gauges of every partition's latest window, read at scrape time."""

    def __init__(self, gpu: GpuStore) -> None:
        self.gpu = gpu

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        labels = ["partition", "site", "card", "profile", "team", "model"]
        fams = {name: GaugeMetricFamily(f"steward_gpu_partition_{name}{suffix}", text,
                                        labels=labels)
                for name, suffix, text in (
                    ("compute_use", "_ratio",
                     "Mean busy share of the partition itself, latest window."),
                    ("compute_card_use", "_ratio", "Share of the card the partition used."),
                    ("promised_compute", "_ratio",
                     "Share of the card promised to the partition."),
                    ("mem_use_max", "_ratio", "Peak memory use of the partition's memory."),
                    ("values_copied", "", "1 when a time-slice replica only carries copies."))}
        for u in self.gpu.partitions(None, None, {}):
            key = [u["partition"], u["site"], u["card"], u["profile"], u["team"] or "",
                   u["model"] or ""]
            for name, fam in fams.items():
                value = u[name]
                if value is not None:
                    fam.add_metric(key, float(value))
        yield from fams.values()


class GpuCostGauges:
    """Prometheus gauges of GPU cost, GPU time and efficiency per team, model, site and tier
    over the trailing `period`, read from the store at scrape time (what GET /cost answers
    for [now - period, now), by window start).

    Gauges, not counters: cost is priced at query time, so a corrected catalogue re-prices
    history, and late or replayed windows land in the past; a total that can go down is
    not a counter, and a trailing period's total goes down by design. For a rate, divide a
    gauge by the period (its HELP says which). Base units: dollars (`_usd`), GPU-seconds
    (`_seconds`: the card's seconds x the share held; GPU-hours x 3600), ratios 0..1.
    Capacity no partition held is `steward_gpu_unallocated_cost_usd`, kept out of the
    per-team series so summing those gives what the teams hold.
    """

    GROUP = ("team", "model", "site", "tier")

    def __init__(self, gpu: GpuStore, period: timedelta,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.gpu = gpu
        self.period = period
        self.clock = clock

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        span = f"over the trailing {int(self.period.total_seconds())} s (by window start)"
        labels = list(self.GROUP)
        cost = GaugeMetricFamily(
            "steward_gpu_cost_usd", f"GPU cost in dollars {span}: kind allocated (the share "
            "held), used (the card used), idle (allocated - used).", labels=[*labels, "kind"])
        held = GaugeMetricFamily(
            "steward_gpu_allocated_seconds", f"GPU-seconds held (card seconds x share) {span}.",
            labels=labels)
        efficiency = GaugeMetricFamily(
            "steward_gpu_efficiency_ratio", f"Used / allocated GPU cost {span}.", labels=labels)
        unallocated = GaugeMetricFamily(
            "steward_gpu_unallocated_cost_usd", f"Cost of card capacity no partition held {span}.")
        inferences = GaugeMetricFamily(
            "steward_gpu_inferences", f"Inferences stored (sampling undone) {span}, where the "
            "group has a model: allocated cost / this x 1000 is $ per 1,000 inferences.",
            labels=labels)
        now = self.clock()
        body = self.gpu.cost(self.GROUP, now - self.period, now)
        for g in body["groups"]:
            key = [g[c] or "" for c in self.GROUP]
            for kind in ("allocated", "used", "idle"):
                if g[f"{kind}_usd"] is not None:
                    cost.add_metric([*key, kind], g[f"{kind}_usd"])
            held.add_metric(key, g["gpu_hours"] * 3600)
            if g["efficiency"] is not None:
                efficiency.add_metric(key, g["efficiency"])
            if g["inferences"] is not None:
                inferences.add_metric(key, g["inferences"])
        unallocated.add_metric([], body[IDLE]["idle_usd"])
        yield from (cost, held, efficiency, unallocated, inferences)
