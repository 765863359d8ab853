"""Drift verdicts faithful to Evidently's `DataDriftPreset`, at a fraction of its cost.

    from processors.drift import ColumnSpec, Reference
    ref = Reference(reference_frame, [ColumnSpec(name="age", kind="numerical"), ...],
                    prediction="score")
    verdict = ref.judge(window_frame)   # DatasetVerdict

Per column, Evidently's default test for its kind and reference size (or a per-column
override), its threshold and score; the dataset drifts when the share of drifted
columns reaches `drift_share`. Evidently's `legacy` code is reached only through
`evidently_adapter`; `evidently_report` runs a full Report for parity checks.
"""

from importlib import import_module
from typing import Any

__all__ = ["ColumnSpec", "DatasetVerdict", "DriftParams", "Finding", "Reference", "judge"]
_HOMES = {"Reference": "reference", "judge": "reference"}


def __getattr__(name: str) -> Any:
    """Lazy: importing the package (e.g. for its settings models) does not load pandas and
    Evidently; the first use of `Reference` or `judge` does."""
    if name not in __all__:
        raise AttributeError(name)
    return getattr(import_module(f"processors.drift.{_HOMES.get(name, 'models')}"), name)
