"""The one interface both policy engines implement (embedded regopy, OPA over REST).

An engine evaluates a data path (slash-separated, as in OPA's Data API: `POST
/v1/data/steward/gate/decision`) against an input and says which revision of the rules
answered. It never raises for a policy or transport problem: an `Evaluation` with
`error` set is the answer, so the gate can fail closed and log the failure as a decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class Evaluation:
    """One evaluation: the result document (None when undefined), or the error."""

    path: str
    result: Any
    revision: str
    engine: Literal["embedded", "opa"]
    elapsed_ms: float
    error: str | None = None


class PolicyEngine(Protocol):
    """Evaluates Rego; `revision` names the rules bundle and data it evaluates with."""

    name: Literal["embedded", "opa"]

    @property
    def revision(self) -> str: ...

    def evaluate(self, path: str, input: dict[str, Any]) -> Evaluation: ...
