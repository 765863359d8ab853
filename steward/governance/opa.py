"""The OPA policy engine: a real OPA server through its REST Data API.

`POST {url}/v1/data/{path}` with `{"input": ...}` answers `{"result": ...}` (no `result`
key when the document is undefined; `decision_id` too when OPA's decision logging is on).
A non-200 answer, a timeout, a connection error or a body that is not JSON is an
`Evaluation` with `error` set, never an exception, so the gate fails closed.

Revision: OPA reports bundle revisions only for bundles with a `.manifest` (in decision
logs, and inline with `?provenance=true` as `provenance.bundles{name: {revision}}`).
`opa run --server /rules` loads plain files, so there is none; the revision is computed
from the same rules directory mounted into OPA (docker-compose mounts rules/), exactly as
the embedded engine computes it, or taken from `revision` when given.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import httpx

from steward.governance.bundle import load_bundle, signature
from steward.governance.engine import Evaluation


class OpaEngine:
    """`PolicyEngine` over an OPA server's Data API."""

    name: Literal["opa"] = "opa"

    def __init__(self, url: str, timeout_s: float = 2.0, client: httpx.Client | None = None,
                 *, rules_dir: str | Path | None = None, revision: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.client = client or httpx.Client(timeout=timeout_s)
        self.rules_dir = Path(rules_dir) if rules_dir is not None else None
        self._fixed_revision = revision
        self._sig: tuple[tuple[str, int, int], ...] | None = None
        self._revision = revision or "unknown"

    @property
    def revision(self) -> str:
        """The local copy's revision (recomputed when its files change), or the given one."""
        if self._fixed_revision is not None or self.rules_dir is None:
            return self._revision
        try:
            sig = signature(self.rules_dir)
            if sig != self._sig:
                self._revision = load_bundle(self.rules_dir).revision
                self._sig = sig
        except Exception:  # noqa: BLE001 - a revision problem never fails a decision
            self._revision = "unknown"
        return self._revision

    def evaluate(self, path: str, input: dict[str, Any]) -> Evaluation:
        path = path.strip("/")
        revision = self.revision
        start = time.perf_counter()

        def failed(why: str) -> Evaluation:
            return Evaluation(path, None, revision, "opa",
                              (time.perf_counter() - start) * 1000.0, error=f"opa: {why}")

        try:
            response = self.client.post(f"{self.url}/v1/data/{path}", json={"input": input},
                                        timeout=self.timeout_s)
        except httpx.TimeoutException:
            return failed(f"timeout after {self.timeout_s} s")
        except httpx.HTTPError as exc:
            return failed(f"unreachable: {type(exc).__name__}: {exc}")
        if response.status_code != 200:
            detail = response.text[:300]
            try:
                body = response.json()
                detail = f"{body.get('code', '')}: {body.get('message', '')}".strip(": ")
            except ValueError:
                pass
            return failed(f"HTTP {response.status_code}: {detail}")
        try:
            body = response.json()
        except ValueError:
            return failed(f"answer is not JSON: {response.text[:200]!r}")
        if not isinstance(body, dict):
            return failed("answer is not a JSON object")
        return Evaluation(path, body.get("result"), revision, "opa",
                          (time.perf_counter() - start) * 1000.0)

    def close(self) -> None:
        self.client.close()
