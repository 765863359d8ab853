"""Machine-readable bench results, so `bench/report.py` can put every figure in one table.

Each bench script keeps printing its own markdown; with `--json PATH` it also writes the
rows it measured here: the figure, its value and unit, the baseline measured in the same
run (name and value), and, where the project set one, the target. Nothing here measures.
"""

from __future__ import annotations

import argparse
import json
import operator
from dataclasses import asdict, dataclass, field
from pathlib import Path

_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


@dataclass(frozen=True)
class Row:
    """One figure beside its same-run baseline; `target` reads like `>= 100000` or `< 1000`."""

    figure: str
    value: float
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    target: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """value / baseline value (how many times the baseline); None without a baseline."""
        if self.baseline_value in (None, 0):
            return None
        return self.value / self.baseline_value

    @property
    def met(self) -> bool | None:
        """Whether the target is reached; None when there is no target."""
        if not self.target:
            return None
        op, _, limit = self.target.partition(" ")
        return _OPS[op](self.value, float(limit))


@dataclass
class Results:
    """The rows one bench script measured; written as JSON when the script was asked to."""

    bench: str
    rows: list[Row] = field(default_factory=list)

    def add(self, figure: str, value: float, unit: str, baseline: str = "",
            baseline_value: float | None = None, target: str = "", note: str = "") -> Row:
        row = Row(figure, float(value), unit, baseline,
                  None if baseline_value is None else float(baseline_value), target, note)
        self.rows.append(row)
        return row

    def write(self, path: str | Path | None) -> None:
        if path:
            doc = {"bench": self.bench, "rows": [asdict(r) for r in self.rows]}
            Path(path).write_text(json.dumps(doc, indent=1))


def add_json_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="also write the figures as JSON rows (for bench/report.py)")


def load(path: str | Path) -> tuple[str, list[Row]]:
    doc = json.loads(Path(path).read_text())
    return doc["bench"], [Row(**r) for r in doc["rows"]]
