"""The profile spec: what an edge agent profiles for a model version, from its reference.

Numerical columns get fixed bin edges at the reference's quantiles, so a window's bin
counts compare with the reference's directly; categorical columns are counted
exactly. `spec_id` names what profiles must share to be merged or compared. Pure.
Import from `steward.profiles`, which re-exports all of this.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import cached_property
from numbers import Real
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, computed_field, model_validator

from steward.schema.profile import MAX_COLUMNS, MAX_EDGES, MAX_RESERVOIR, ColumnName
from steward.schema.records import Frozen, Name

Kind = Literal["numerical", "categorical"]


class NumericalColumnSpec(Frozen):
    kind: Literal["numerical"] = "numerical"
    edges: Annotated[list[float], Field(max_length=MAX_EDGES)]


class CategoricalColumnSpec(Frozen):
    kind: Literal["categorical"] = "categorical"


ColumnSpecP = Annotated[NumericalColumnSpec | CategoricalColumnSpec, Field(discriminator="kind")]


class ProfileSpec(Frozen):
    """What an edge agent profiles for one model version: the columns, their kinds and
    bin edges, the KLL `k` and the reservoir size. `spec_id` names the part profiles
    must share to be merged or compared (everything but the reservoir size)."""

    model: Name
    version: Name
    prediction: ColumnName | None = None
    columns: Annotated[dict[ColumnName, ColumnSpecP], Field(max_length=MAX_COLUMNS)]
    kll_k: int = Field(1024, ge=1024, le=8192)
    reservoir: int = Field(256, ge=0, le=MAX_RESERVOIR)

    @model_validator(mode="wrap")
    @classmethod
    def _check_spec_id(cls, data: Any, handler: Any) -> ProfileSpec:
        """A spec read back (from the API, from a cache) may carry its id: it must match."""
        given = None
        if isinstance(data, dict) and "spec_id" in data:
            data = dict(data)
            given = data.pop("spec_id")
        spec = handler(data)
        if given is not None and given != spec.spec_id:
            raise ValueError(f"spec_id {given!r} does not match the spec's content")
        return spec

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def spec_id(self) -> str:
        """sha256 of the canonical JSON of model, version, prediction, columns and kll_k."""
        body = {"model": self.model, "version": self.version, "prediction": self.prediction,
                "columns": {n: c.model_dump() for n, c in self.columns.items()},
                "kll_k": self.kll_k}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()


def _finite(values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    return arr[np.isfinite(arr)]


def reference_edges(values: np.ndarray, bins: int = 10) -> list[float]:
    """Interior bin edges at the finite values' quantiles 1/bins .. (bins-1)/bins,
    deduplicated (a column with few distinct values gets fewer bins)."""
    if bins < 1:
        raise ValueError("bins must be at least 1")
    finite = _finite(values)
    if finite.size == 0 or bins == 1:
        return []
    qs = np.quantile(finite, [i / bins for i in range(1, bins)])
    return [float(q) for q in np.unique(qs)]


def bin_counts(edges: Sequence[float], values: np.ndarray) -> list[int]:
    """Counts of the finite values per bin: bin = searchsorted(edges, v, side="right"),
    so len(edges) + 1 bins."""
    idx = np.searchsorted(np.asarray(edges, dtype=float), _finite(values), side="right")
    return np.bincount(idx, minlength=len(edges) + 1).astype(int).tolist()


def _number(value: Any) -> float | None:
    """A cell as a float, or None when it is not a number (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        return None
    return float(value)


def spec_from_reference(model: str, version: str, columns: dict[str, Kind],
                        prediction: str | None, rows: list[dict[str, Any]], *,
                        bins: int = 10, kll_k: int = 1024, reservoir: int = 256
                        ) -> ProfileSpec:
    """The spec for a reference: numerical edges from its finite values (None, NaN, inf
    and non-numbers dropped; a column with none gets no edges), categorical as declared."""
    specs: dict[str, NumericalColumnSpec | CategoricalColumnSpec] = {}
    for name, kind in columns.items():
        if kind == "categorical":
            specs[name] = CategoricalColumnSpec()
        else:
            values = [v for v in (_number(r.get(name)) for r in rows) if v is not None]
            specs[name] = NumericalColumnSpec(edges=reference_edges(np.array(values), bins))
    return ProfileSpec(model=model, version=version, prediction=prediction, columns=specs,
                       kll_k=kll_k, reservoir=reservoir)
