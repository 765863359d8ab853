"""A full Evidently `Report([DataDriftPreset()])` on a window, reduced to what Steward keeps.

The yardstick for Steward's verdicts: the parity tests and `bench/drift.py` run it on
the same windows and compare. It is never on the hot path (about 0.5-1 s a window).
Both sides are told the same column kinds through a `DataDefinition`; the prediction
column is declared numerical (or categorical) like any feature, since declaring it a
regression prediction makes the preset leave it out.

Reads the Report through its public 0.7 API only: each column's `ValueDrift` metric
(score, resolved method and threshold) with its test (FAIL = drift), and
`DriftedColumnsCount` (count, share) with its "share < drift_share" test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

from processors.drift import evidently_adapter as ev
from processors.drift.models import ColumnSpec, DriftParams


@dataclass(frozen=True)
class ReportColumn:
    column: str
    stattest: str
    """Registry name, mapped back from the Report's display name."""
    threshold: float
    score: float
    drifted: bool


@dataclass(frozen=True)
class ReportVerdict:
    columns: dict[str, ReportColumn]
    drifted_count: int
    share: float
    dataset_drift: bool


def run_report(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[ColumnSpec],
               params: DriftParams | None = None) -> ReportVerdict:
    """Evidently's own verdict on one window, for the given declared columns."""
    return reduce(run_snapshot(reference, current, columns, params))


def run_snapshot(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[ColumnSpec],
                 params: DriftParams | None = None) -> Any:
    """The full Report run (what the benchmark times), as Evidently's `Snapshot`."""
    params = params or DriftParams()
    names = [c.name for c in columns]
    definition = DataDefinition(
        numerical_columns=[c.name for c in columns if c.kind == "numerical"],
        categorical_columns=[c.name for c in columns if c.kind == "categorical"],
    )
    preset = DataDriftPreset(
        drift_share=params.drift_share,
        per_column_method=dict(params.stattest) or None,
        per_column_threshold=dict(params.threshold) or None,
    )
    return Report([preset], include_tests=True).run(
        Dataset.from_pandas(current[names], data_definition=definition),
        Dataset.from_pandas(reference[names], data_definition=definition),
    )


def reduce(snapshot: Any) -> ReportVerdict:
    """A snapshot's metrics and tests, as per-column and dataset verdicts."""
    return _reduce(snapshot.dict())


def _reduce(snapshot: dict[str, Any]) -> ReportVerdict:
    """The snapshot's metrics and tests, as per-column and dataset verdicts."""
    fails = {t["metric_config"]["metric_id"]: t["status"] for t in snapshot["tests"]}
    columns: dict[str, ReportColumn] = {}
    count = share = dataset = None
    for metric in snapshot["metrics"]:
        config, status = metric["config"], str(fails.get(metric["id"]))
        if config["type"].endswith(":ValueDrift"):
            columns[config["column"]] = ReportColumn(
                column=config["column"], stattest=ev.name_from_label(config["method"]),
                threshold=float(config["threshold"]), score=float(metric["value"]),
                drifted=status.endswith("FAIL"))
        elif config["type"].endswith(":DriftedColumnsCount"):
            count, share = int(metric["value"]["count"]), float(metric["value"]["share"])
            dataset = status.endswith("FAIL")
    if count is None or share is None or dataset is None:
        raise ValueError("the report holds no DriftedColumnsCount result")
    return ReportVerdict(columns, count, share, dataset)
