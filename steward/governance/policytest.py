"""Rego unit tests and checks for a rules directory (`steward policy test` / `check`).

regopy has no test runner, and rego-cpp's `with` keyword crashes the interpreter
(SIGSEGV/abort) on most rules (seen on regopy 1.2.0, 1.4.0 and 1.5.2), so OPA-style
`test_* if { ... with input as ... }` tests cannot run in-process. Tests are therefore
case tables, one per `*_test.rego` module (package `<policy package>_test`):

    cases["deny: over budget"] := {
        "input": {...},            # the input document
        "patch": {...},            # optional: deep-merged over the input (rego-cpp's
                                   # object.union is not recursive, OPA's is)
        "data": {...},             # optional: deep-merged over data.json for this case
        "deny": [...],             # the policy's deny set, exactly (sorted), or
        "deny_includes": [...],    # reasons that must be among the deny set, or
        "rule": "decision", "equals": ...,  # any rule of the policy package, exactly
    }

Each case is evaluated by setting the input (no `with`) against the policy package the
test package names. `test_*` rules are also run, with OPA's semantics (pass when defined
and true), for tests that need no `with`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from steward.errors import ConfigError
from steward.governance.bundle import Bundle, load_bundle
from steward.governance.embedded import Compiled, query_for

Outcome = Literal["pass", "fail", "error"]


@dataclass(frozen=True)
class TestResult:
    """One Rego test's outcome."""

    file: str
    package: str
    name: str
    outcome: Outcome
    elapsed_ms: float
    detail: str = ""

    __test__ = False  # not a pytest class


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = _merge(base.get(key), value)
        return out
    return patch


def _judge(case: dict[str, Any], compiled: Compiled, policy: str) -> tuple[Outcome, str]:
    inp = _merge(case.get("input", {}), case.get("patch", {}))
    if "rule" in case:
        got = compiled.evaluate(f"{policy}/{case['rule']}", inp)
        want = case.get("equals")
        if got == want:
            return "pass", ""
        return "fail", f"{case['rule']}: got {json.dumps(got)}, want {json.dumps(want)}"
    got = compiled.evaluate(f"{policy}/deny", inp)
    got_list = sorted(got or [])
    if "deny" in case:
        want = sorted(case["deny"])
        if got_list == want:
            return "pass", ""
        return "fail", f"deny: got {json.dumps(got_list)}, want {json.dumps(want)}"
    if "deny_includes" in case:
        missing = [r for r in case["deny_includes"] if r not in got_list]
        if not missing:
            return "pass", ""
        return "fail", f"deny lacks {json.dumps(missing)}; got {json.dumps(got_list)}"
    return "error", "case has none of deny, deny_includes, rule/equals"


def run_tests(rules_dir: str | Path, *, match: str | None = None) -> list[TestResult]:
    """Run every case and `test_*` rule (whose name contains `match`, when given);
    ConfigError if the rules or tests do not compile."""
    bundle = load_bundle(rules_dir)
    compiled = Compiled(bundle, with_tests=True)
    patched: dict[str, Compiled] = {}
    results: list[TestResult] = []
    for module in bundle.tests:
        package = module.package
        path = package.replace(".", "/")
        policy = path.removesuffix("_test")
        try:
            cases = compiled.evaluate(f"{path}/cases", {}) or {}
        except Exception as exc:  # noqa: BLE001 - reported as a test error
            results.append(TestResult(module.path, package, "cases", "error", 0.0, str(exc)))
            cases = {}
        for name, case in sorted(cases.items()):
            if match and match not in name:
                continue
            start = time.perf_counter()
            try:
                target = compiled
                if case.get("data"):
                    key = json.dumps(case["data"], sort_keys=True)
                    if key not in patched:
                        data = _merge(bundle.data, case["data"])
                        patched[key] = Compiled(Bundle(bundle.root, bundle.modules, (),
                                                       data, bundle.revision))
                    target = patched[key]
                outcome, detail = _judge(case, target, policy)
            except Exception as exc:  # noqa: BLE001 - a case that errors is reported
                outcome, detail = "error", f"{type(exc).__name__}: {exc}"
            results.append(TestResult(module.path, package, name, outcome,
                                      (time.perf_counter() - start) * 1000.0, detail))
        for name in module.test_rules():
            if match and match not in name:
                continue
            start = time.perf_counter()
            try:
                value = compiled.evaluate(f"{path}/{name}", {})
            except Exception as exc:  # noqa: BLE001 - a test that errors is reported
                outcome, detail = "error", f"{type(exc).__name__}: {exc}"
            else:
                outcome = "pass" if value is True else "fail"
                detail = "" if value is True else f"got {json.dumps(value)}"
            results.append(TestResult(module.path, package, name, outcome,
                                      (time.perf_counter() - start) * 1000.0, detail))
    return results


@dataclass(frozen=True)
class CheckReport:
    """What `steward policy check` found: the bundle, and evaluation errors per package."""

    bundle: Bundle
    packages: list[str]
    errors: list[str]


def check(rules_dir: str | Path, examples: list[dict[str, Any]] | None = None) -> CheckReport:
    """Parse and compile everything (policies and tests); then evaluate each policy package
    once per input (empty input, plus `examples`), which reports what compiles but cannot
    run (an unknown function, conflicting values). ConfigError on a parse error."""
    bundle = load_bundle(rules_dir)
    Compiled(bundle, with_tests=True)  # tests must compile too
    compiled = Compiled(bundle)
    packages = sorted({m.package for m in bundle.modules})
    errors: list[str] = []
    for package in packages:
        for inp in [{}, *(examples or [])]:
            try:
                compiled.evaluate(package.replace(".", "/"), inp)
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                errors.append(f"{query_for(package.replace('.', '/'))}: {exc}")
                break
    return CheckReport(bundle, packages, errors)


def load_examples(rules_dir: str | Path) -> dict[str, dict[str, Any]]:
    """rules/examples/*.json by file stem: {"description", "input", "expect"}."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted((Path(rules_dir) / "examples").glob("*.json")):
        try:
            out[path.stem] = json.loads(path.read_text())
        except ValueError as exc:
            raise ConfigError(f"{path.name}: invalid JSON: {exc}") from exc
    return out
