"""Drift verdicts in the store: the latest judgement of every window, and GET /drift."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from api.store import Store
from steward import topics as T
from steward.schema.drift import DriftVerdict
from steward.stream import Source

SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS verdicts_seq;
CREATE TABLE IF NOT EXISTS drift_verdicts (
    seq BIGINT DEFAULT nextval('verdicts_seq'),
    id VARCHAR PRIMARY KEY,
    model VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    site VARCHAR NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    window_end TIMESTAMPTZ NOT NULL,
    drift BOOLEAN NOT NULL,
    verdict JSON NOT NULL,
    stored_at TIMESTAMPTZ NOT NULL
);
"""


@dataclass(frozen=True)
class VerdictQuery:
    model: str | None = None
    version: str | None = None
    site: str | None = None
    drift: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: int = 0
    limit: int = 100


class VerdictStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        with store.cursor() as cur:
            cur.execute(SCHEMA)

    def insert(self, verdicts: Sequence[DriftVerdict]) -> int:
        """Store each verdict once (by its deterministic id)."""
        if not verdicts:
            return 0
        now = datetime.now(UTC)
        frame = pd.DataFrame(
            [[v.id, v.model, v.version, v.site, v.window.start, v.window.end, v.drift,
              v.model_dump_json(by_alias=True), now] for v in verdicts],
            columns=["id", "model", "version", "site", "window_start", "window_end", "drift",
                     "verdict", "stored_at"]).drop_duplicates(subset=["id"])
        return self.store.insert_frame("drift_verdicts", frame)

    def get(self, verdict_id: str) -> dict[str, Any] | None:
        with self.store.cursor() as cur:
            row = cur.execute("SELECT verdict FROM drift_verdicts WHERE id = ?",
                              [verdict_id]).fetchone()
        return json.loads(row[0]) if row else None

    def latest(self) -> list[dict[str, Any]]:
        """The newest verdict of every (model, version, site)."""
        with self.store.cursor() as cur:
            rows = cur.execute(
                "SELECT verdict FROM drift_verdicts QUALIFY row_number() OVER "
                "(PARTITION BY model, version, site ORDER BY window_start DESC) = 1").fetchall()
        return [json.loads(r) for (r,) in rows]

    def query(self, q: VerdictQuery) -> list[tuple[int, dict[str, Any]]]:
        filters = {c: getattr(q, c) for c in ("model", "version", "site", "drift")}
        return self.store.page("drift_verdicts", "verdict", "window_start", filters, q.since,
                               q.until, q.after, q.limit)


class VerdictSink:
    """Stores the drift verdicts the judges emit: what GET /drift serves."""

    name = "verdict-sink"
    inputs = (T.DRIFT_VERDICTS,)

    def __init__(self, verdicts: VerdictStore) -> None:
        self.verdicts = verdicts

    def write(self, items: Sequence[tuple[DriftVerdict, Source]]) -> None:
        self.verdicts.insert([v for v, _ in items])


class DriftGauges:
    """Prometheus gauges of the latest verdict per (model, version, site), read from the
    store at scrape time (so every API replica reports what its store holds)."""

    def __init__(self, verdicts: VerdictStore) -> None:
        self.verdicts = verdicts

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        labels = ["model", "version", "site"]
        share = GaugeMetricFamily("steward_drift_share_ratio",
                                  "Share of drifted columns in the latest window.", labels=labels)
        drifted = GaugeMetricFamily("steward_drift_drifted_columns",
                                    "Drifted columns in the latest window.", labels=labels)
        rows = GaugeMetricFamily("steward_drift_window_rows",
                                 "Rows judged in the latest window.", labels=labels)
        flag = GaugeMetricFamily("steward_drift_dataset_drift",
                                 "1 when the latest window drifted (deciding method).",
                                 labels=labels)
        column = GaugeMetricFamily("steward_drift_column_drifted",
                                   "1 for each column that drifted in the latest window.",
                                   labels=[*labels, "column"])
        for v in self.verdicts.latest():
            key = [v["model"], v["version"], v["site"]]
            decided = v[v["decided_by"]] or v["evidently"]
            share.add_metric(key, decided["share"])
            drifted.add_metric(key, len(decided["drifted_columns"]))
            rows.add_metric(key, v["rows"])
            flag.add_metric(key, 1.0 if v["drift"] else 0.0)
            for name in decided["drifted_columns"]:
                column.add_metric([*key, name], 1.0)
        yield from (share, drifted, rows, flag, column)
