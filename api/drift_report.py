"""The full Evidently HTML report for one stored drift window, rendered on demand.

Verdicts are computed cheaply by Steward's adapter; when a person wants Evidently's
own report (plots, per-column detail), the API rebuilds the window from the stored
inference records and runs a full `DataDriftPreset` over it and the reference.
"""

from __future__ import annotations

import pandas as pd

from api.references import ReferenceStore
from api.store import InferenceQuery, Store
from api.verdicts import VerdictStore
from processors.drift_judge import window_row
from steward.errors import NotFound

MAX_WINDOW_ROWS = 100_000


def render(verdict_id: str, verdicts: VerdictStore, references: ReferenceStore,
           store: Store) -> str:
    """HTML of Evidently's report for the window behind `verdict_id`."""
    from processors.drift.evidently_report import run_snapshot
    from processors.drift.models import ColumnSpec

    verdict = verdicts.get(verdict_id)
    if verdict is None:
        raise NotFound(f"no drift verdict {verdict_id!r}")
    ref = references.get(verdict["model"], verdict["version"])
    if ref is None:
        raise NotFound(f"the reference of {verdict['model']} {verdict['version']} is gone")
    rows = store.query_inferences(InferenceQuery(
        model=verdict["model"], version=verdict["version"], site=verdict["site"],
        since=pd.Timestamp(verdict["window"]["start"]).to_pydatetime(),
        until=pd.Timestamp(verdict["window"]["end"]).to_pydatetime(), limit=MAX_WINDOW_ROWS))
    if not rows:
        raise NotFound(f"the records of window {verdict_id!r} are not in the store")
    names = list(ref.columns)
    current = pd.DataFrame([window_row(r["features"], r["prediction"], ref.prediction)
                            for _, r in rows]).reindex(columns=names)
    specs = [ColumnSpec(name=n, kind=k) for n, k in ref.columns.items()]
    snapshot = run_snapshot(pd.DataFrame(ref.rows, columns=names), current, specs)
    return snapshot.get_html_str(as_iframe=False)
