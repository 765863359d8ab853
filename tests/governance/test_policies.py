"""The shipped rules: Rego cases through `steward policy test`, examples, engines, reload."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from steward.errors import ConfigError
from steward.governance.bundle import GATE_PATH, load_bundle
from steward.governance.embedded import EmbeddedEngine
from steward.governance.opa import OpaEngine
from steward.governance.policytest import load_examples, run_tests
from tests.governance.opa_server import OpaTestServer

RULES = Path(__file__).resolve().parents[2] / "rules"
EXAMPLES = load_examples(RULES)
POLICIES = ("budget", "gate", "hardware", "promotion", "quotas", "residency")


@pytest.fixture(scope="module")
def engine() -> EmbeddedEngine:
    return EmbeddedEngine(RULES)


# --- Rego tests -------------------------------------------------------------------------

def test_policy_test_command_passes() -> None:
    # Through the CLI, in its own process: rego-cpp aborts the process on some inputs.
    out = subprocess.run([sys.executable, "-m", "steward.cli", "policy", "test",
                          "--rules", str(RULES)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "passed" in out.stdout and "failed" not in out.stdout


def test_every_policy_has_allow_and_deny_cases() -> None:
    results = run_tests(RULES)
    assert all(r.outcome == "pass" for r in results), [r for r in results if r.outcome != "pass"]
    for policy in POLICIES:
        names = [r.name for r in results if r.file == f"{policy}_test.rego"]
        assert any(n.startswith("allow") for n in names), policy
        assert any(n.startswith("deny") for n in names), policy


def test_policy_test_fails_on_a_wrong_case(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    test = rules / "budget_test.rego"
    test.write_text(test.read_text().replace(
        '"deny": ["action.team missing"]', '"deny": ["something else"]'))
    out = subprocess.run([sys.executable, "-m", "steward.cli", "policy", "test",
                          "--rules", str(rules)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "FAIL  budget_test.rego deny: missing team" in out.stdout


def test_policy_check_prints_revision() -> None:
    out = subprocess.run([sys.executable, "-m", "steward.cli", "policy", "check",
                          "--rules", str(RULES)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"revision {load_bundle(RULES).revision}" in out.stdout


# --- the entry document on the examples -----------------------------------------------

@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_gives_expected_decision(engine: EmbeddedEngine, name: str) -> None:
    example = EXAMPLES[name]
    ev = engine.evaluate(GATE_PATH, example["input"])
    assert ev.error is None
    assert ev.result["allow"] is example["expect"]["allow"]
    assert ev.result["deny"] == example["expect"]["deny"]
    assert ev.result["allow"] == (len(ev.result["deny"]) == 0)
    assert ev.engine == "embedded" and ev.revision == engine.revision


def test_every_policy_has_an_allow_and_a_deny_example() -> None:
    allowed = {n.split("_")[0] for n, e in EXAMPLES.items() if e["expect"]["allow"]}
    denied = {n.split("_")[0] for n, e in EXAMPLES.items() if not e["expect"]["allow"]}
    assert {"promotion", "rollback", "retrain"} <= allowed
    assert {"promotion", "residency", "budget", "hardware", "quota"} <= denied


@pytest.mark.parametrize("inp", [{}, {"action": {}}, {"action": {"type": 3}},
                                 {"action": {"type": "steward.model.promoted", "sites": "x"}}])
def test_decision_defined_for_any_input(engine: EmbeddedEngine, inp: dict) -> None:
    ev = engine.evaluate(GATE_PATH, inp)
    assert ev.error is None
    assert ev.result["allow"] is False and ev.result["deny"]


def test_undefined_path_is_none_not_error(engine: EmbeddedEngine) -> None:
    ev = engine.evaluate("steward/gate/no_such_rule", {})
    assert ev.error is None and ev.result is None


# --- OPA engine: parity and failing closed ----------------------------------------------

@pytest.fixture(scope="module")
def opa_server():
    with OpaTestServer(RULES) as server:
        yield server


def test_opa_parity_on_every_example(engine: EmbeddedEngine, opa_server: OpaTestServer) -> None:
    opa = OpaEngine(opa_server.url, timeout_s=5, rules_dir=RULES)
    for name, example in EXAMPLES.items():
        a = engine.evaluate(GATE_PATH, example["input"])
        b = opa.evaluate(GATE_PATH, example["input"])
        assert b.error is None, name
        assert (a.result, a.revision) == (b.result, b.revision), name
        assert b.engine == "opa"
    assert opa_server.requests[-1]["path"] == GATE_PATH
    assert "input" in opa_server.requests[-1]["body"]


def test_opa_undefined_is_none(opa_server: OpaTestServer) -> None:
    opa = OpaEngine(opa_server.url, timeout_s=5)
    ev = opa.evaluate("steward/gate/no_such_rule", {})
    assert ev.error is None and ev.result is None and ev.revision == "unknown"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_opa_unreachable_fails_closed() -> None:
    ev = OpaEngine(f"http://127.0.0.1:{_free_port()}", timeout_s=1).evaluate(GATE_PATH, {})
    assert ev.result is None and ev.error and "unreachable" in ev.error


def test_opa_timeout_fails_closed(opa_server: OpaTestServer) -> None:
    opa_server.delay_s = 0.5
    try:
        ev = OpaEngine(opa_server.url, timeout_s=0.1).evaluate(GATE_PATH, {})
    finally:
        opa_server.delay_s = 0.0
    assert ev.result is None and "timeout" in ev.error


def test_opa_500_fails_closed(opa_server: OpaTestServer) -> None:
    opa_server.fail_status = 500
    try:
        ev = OpaEngine(opa_server.url, timeout_s=2).evaluate(GATE_PATH, {})
    finally:
        opa_server.fail_status = None
    assert ev.result is None and ev.error == "opa: HTTP 500: internal_error: injected failure"


def test_opa_non_json_fails_closed() -> None:
    transport = httpx.MockTransport(lambda req: httpx.Response(200, text="<html>proxy</html>"))
    opa = OpaEngine("http://opa", client=httpx.Client(transport=transport))
    ev = opa.evaluate(GATE_PATH, {})
    assert ev.result is None and "not JSON" in ev.error


# --- the embedded engine: errors, reload ------------------------------------------------

def test_embedded_engine_error_is_an_evaluation(engine: EmbeddedEngine) -> None:
    ev = engine.evaluate(GATE_PATH, {"x": float("nan")})  # not JSON: cannot be an input
    assert ev.result is None and ev.error and ev.error.startswith("embedded engine:")


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    shutil.copytree(RULES, tmp_path / "rules")
    broken = "package broken\n\nallow if {\n  input.x ==\n}\n"
    (tmp_path / "rules" / "broken.rego").write_text(broken)
    with pytest.raises(ConfigError, match=r"broken\.rego:4:\d+: rego syntax error"):
        EmbeddedEngine(tmp_path / "rules")


def test_hot_reload(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    seen: list[tuple[str, str]] = []
    engine = EmbeddedEngine(rules, on_reload=lambda old, new: seen.append((old, new)))
    first = engine.revision
    inp = EXAMPLES["budget_deny_retrain"]["input"]
    assert engine.evaluate(GATE_PATH, inp).result["allow"] is False
    assert engine.reload_if_changed() is False

    data = json.loads((rules / "data.json").read_text())
    data["budgets"]["teams"]["growth"]["gpu_usd"] = 10000
    (rules / "data.json").write_text(json.dumps(data))
    with caplog.at_level(logging.INFO, logger="steward.governance.embedded"):
        assert engine.reload_if_changed() is True
    second = engine.revision
    assert second != first and seen == [(first, second)]
    assert f"policy revision {first} -> {second}" in caplog.text
    ev = engine.evaluate(GATE_PATH, inp)
    assert ev.result["allow"] is True and ev.revision == second

    # A broken bundle is logged and the running revision kept.
    (rules / "gate.rego").write_text((rules / "gate.rego").read_text() + "\noops := {\n")
    with caplog.at_level(logging.ERROR, logger="steward.governance.embedded"):
        assert engine.reload_if_changed() is False
    assert engine.revision == second and "gate.rego" in (engine.last_error or "")
    assert "policy reload failed" in caplog.text
    assert engine.evaluate(GATE_PATH, inp).result["allow"] is True


def test_revision_ignores_tests_and_examples(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    before = load_bundle(rules).revision
    assert before == load_bundle(RULES).revision
    (rules / "budget_test.rego").write_text((rules / "budget_test.rego").read_text() + "\n# x\n")
    (rules / "examples" / "new.json").write_text("{}")
    assert load_bundle(rules).revision == before
    (rules / "budget.rego").write_text((rules / "budget.rego").read_text() + "\n# x\n")
    assert load_bundle(rules).revision != before
