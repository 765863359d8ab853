"""Reference datasets per model version: what drift is measured against.

A reference is a table of feature columns (plus, optionally, the prediction column),
each declared numerical or categorical, registered from a CSV or Parquet file. It is
kept in the store's `reference_sets` (one row of metadata per model version) and
`reference_rows` (one JSON object per row) and served whole to the drift processors.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from api.store import Store
from processors.references import Kind, ReferenceData
from steward.errors import InvalidInput, UnsupportedMediaType

SCHEMA = """
CREATE TABLE IF NOT EXISTS reference_sets (
    model VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    columns JSON NOT NULL,
    prediction VARCHAR,
    n_rows INTEGER NOT NULL,
    source VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (model, version)
);
CREATE TABLE IF NOT EXISTS reference_rows (
    model VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    idx INTEGER NOT NULL,
    row JSON NOT NULL,
    PRIMARY KEY (model, version, idx)
);
"""

MAX_ROWS = 200_000
MAX_COLUMNS = 1024
PARQUET = ("application/vnd.apache.parquet", "application/x-parquet", "application/parquet")


@dataclass(frozen=True)
class Reference(ReferenceData):
    """What the drift judges work with, plus where it came from and when."""

    source: str = "upload"
    created_at: datetime | None = None


def read_table(body: bytes, content_type: str) -> pd.DataFrame:
    """A CSV or Parquet body as a frame; a clear 4xx for anything else."""
    media = content_type.split(";")[0].strip().lower()
    try:
        if media == "text/csv":
            return pd.read_csv(io.BytesIO(body))
        if media in PARQUET:
            return pd.read_parquet(io.BytesIO(body))
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"could not read the {media} body: {exc}") from exc
    raise UnsupportedMediaType(f"send text/csv or {PARQUET[0]}, not {media!r}")


def column_kinds(frame: pd.DataFrame, categorical: Sequence[str],
                 prediction: str | None) -> dict[str, Kind]:
    """Every column numerical unless declared categorical; non-numeric undeclared ones fail."""
    if frame.empty:
        raise InvalidInput("the reference holds no rows")
    if len(frame) > MAX_ROWS or len(frame.columns) > MAX_COLUMNS:
        raise InvalidInput(f"a reference is limited to {MAX_ROWS} rows and {MAX_COLUMNS} "
                           f"columns; got {len(frame)} x {len(frame.columns)}")
    unknown = sorted(set(categorical) - set(frame.columns))
    if prediction is not None and prediction not in frame.columns:
        unknown.append(prediction)
    if unknown:
        raise InvalidInput(f"column(s) not in the file: {', '.join(map(str, unknown))}")
    kinds: dict[str, Kind] = {}
    for name in frame.columns:
        if not isinstance(name, str) or not name or len(name) > 128:
            raise InvalidInput(f"column name {name!r} must be a non-empty string <= 128 chars")
        if name in categorical:
            kinds[name] = "categorical"
        elif pd.api.types.is_numeric_dtype(frame[name]) and not \
                pd.api.types.is_bool_dtype(frame[name]):
            kinds[name] = "numerical"
        else:
            raise InvalidInput(f"column {name!r} is not numeric: declare it categorical")
    return kinds


def _rows(frame: pd.DataFrame, kinds: dict[str, Kind]) -> list[dict[str, Any]]:
    """JSON-ready rows: NaN -> null, numpy scalars -> Python, categoricals as strings."""
    clean = frame.astype(object).where(frame.notna(), None)
    rows = []
    for record in clean.to_dict(orient="records"):
        row = {}
        for k, v in record.items():
            if v is None:
                row[k] = None
            elif kinds[k] == "categorical":
                row[k] = str(v)
            else:
                value = float(v)
                if not np.isfinite(value):
                    raise InvalidInput(f"column {k!r} holds {value}: only finite numbers")
                row[k] = value
        rows.append(row)
    return rows


class ReferenceStore:
    """Reference datasets in the store's DuckDB file (same single-writer process)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        with store.cursor() as cur:
            cur.execute(SCHEMA)

    def put(self, model: str, version: str, frame: pd.DataFrame, categorical: Sequence[str],
            prediction: str | None, source: str = "upload") -> Reference:
        """Register (or replace) the reference of one model version."""
        kinds = column_kinds(frame, categorical, prediction)
        rows = _rows(frame, kinds)
        now = datetime.now(UTC)
        data = pd.DataFrame({"model": model, "version": version, "idx": range(len(rows)),
                             "row": [json.dumps(r) for r in rows]})
        with self.store.write() as cur:
            cur.execute("DELETE FROM reference_rows WHERE model = ? AND version = ?",
                        [model, version])
            cur.execute("DELETE FROM reference_sets WHERE model = ? AND version = ?",
                        [model, version])
            cur.execute("INSERT INTO reference_sets VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [model, version, json.dumps(kinds), prediction, len(rows), source, now])
            cur.register("incoming_rows", data)
            cur.execute("INSERT INTO reference_rows SELECT model, version, idx, row "
                        "FROM incoming_rows")
            cur.unregister("incoming_rows")
        return Reference(model, version, kinds, prediction, rows, source, now)

    def get(self, model: str, version: str) -> Reference | None:
        with self.store.cursor() as cur:
            meta = cur.execute("SELECT columns, prediction, source, created_at FROM "
                               "reference_sets WHERE model = ? AND version = ?",
                               [model, version]).fetchone()
            if meta is None:
                return None
            rows = cur.execute("SELECT row FROM reference_rows WHERE model = ? AND version = ? "
                               "ORDER BY idx", [model, version]).fetchall()
        return Reference(model, version, json.loads(meta[0]), meta[1],
                         [json.loads(r) for (r,) in rows], meta[2], meta[3])

    def list(self) -> list[dict[str, Any]]:
        with self.store.cursor() as cur:
            rows = cur.execute("SELECT model, version, columns, prediction, n_rows, source, "
                               "created_at FROM reference_sets ORDER BY model, version").fetchall()
        return [{"model": m, "version": v, "columns": json.loads(c), "prediction": p,
                 "rows": n, "source": s, "created_at": t} for m, v, c, p, n, s, t in rows]


class ReferenceCapture:
    """Give a model version with no reference one from its first `rows` stored records
    (by event time): features, plus the prediction as column `prediction`. Strings and
    booleans are categorical, numbers numerical. An uploaded reference always wins."""

    def __init__(self, references: ReferenceStore, rows: int) -> None:
        self.references = references
        self.rows = rows
        self._done: set[tuple[str, str]] = set()

    def after_insert(self, versions: set[tuple[str, str]]) -> list[Reference]:
        """Capture for every version in `versions` that now has enough records."""
        if self.rows <= 0:
            return []
        captured = []
        for model, version in versions - self._done:
            if self.references.get(model, version) is not None:
                self._done.add((model, version))
                continue
            ref = self._capture(model, version)
            if ref is not None:
                self._done.add((model, version))
                captured.append(ref)
        return captured

    def _capture(self, model: str, version: str) -> Reference | None:
        with self.references.store.cursor() as cur:
            rows = cur.execute(
                "SELECT record FROM inferences WHERE model = ? AND version = ? "
                "ORDER BY ts, id LIMIT ?", [model, version, self.rows]).fetchall()
        if len(rows) < self.rows:
            return None
        records = [json.loads(r) for (r,) in rows]
        frame = pd.DataFrame([{**r["features"], "prediction": r["prediction"]}
                              for r in records])
        frame = frame.dropna(axis="columns", how="all")
        if frame.columns.empty:  # latency-only records: nothing to build a reference from,
            self._done.add((model, version))  # and nothing to look at again on every batch
            return None
        categorical = [c for c in frame.columns
                       if not pd.api.types.is_numeric_dtype(frame[c])
                       or pd.api.types.is_bool_dtype(frame[c])]
        frame[categorical] = frame[categorical].astype(str)
        prediction = "prediction" if "prediction" in frame.columns else None
        return self.references.put(model, version, frame, categorical, prediction,
                                   source="capture")
