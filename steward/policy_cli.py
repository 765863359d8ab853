"""`steward policy test | check | eval`: the Rego rules in a rules directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from steward.errors import ConfigError

RulesDir = Annotated[Path, typer.Option("--rules", help="The rules directory.")]
DEFAULT_RULES = Path("rules")


def policy_test(rules: RulesDir = DEFAULT_RULES,
                match: Annotated[str | None, typer.Option(
                    help="Run only the cases and tests whose name contains this.")] = None,
                verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False) -> None:
    """Run the Rego tests (*_test.rego); exit 1 on any failure or error."""
    from steward.governance.policytest import run_tests

    try:
        results = run_tests(rules, match=match)
    except ConfigError as exc:
        typer.echo(f"ERROR {exc.reason}", err=True)
        raise typer.Exit(2) from exc
    bad = [r for r in results if r.outcome != "pass"]
    for r in results:
        if verbose or r.outcome != "pass":
            line = f"{r.outcome.upper():5} {r.file} {r.name} ({r.elapsed_ms:.1f} ms)"
            typer.echo(line + (f"\n      {r.detail}" if r.detail else ""))
    passed = len(results) - len(bad)
    typer.echo(f"{passed}/{len(results)} passed"
               + (f", {len(bad)} failed or errored" if bad else ""))
    if bad or not results:
        raise typer.Exit(1)


def policy_check(rules: RulesDir = DEFAULT_RULES) -> None:
    """Parse and compile the rules, tests and data document; print the revision."""
    from steward.governance.policytest import check, load_examples

    try:
        examples = [e["input"] for e in load_examples(rules).values() if "input" in e]
        report = check(rules, examples)
    except ConfigError as exc:
        typer.echo(f"ERROR {exc.reason}", err=True)
        raise typer.Exit(2) from exc
    for error in report.errors:
        typer.echo(f"ERROR {error}", err=True)
    typer.echo(f"revision {report.bundle.revision}: {len(report.bundle.modules)} policies, "
               f"{len(report.bundle.tests)} test files, packages {', '.join(report.packages)}")
    if report.errors:
        raise typer.Exit(1)


def policy_eval(path: Annotated[str, typer.Argument(
                    help="Slash-separated data path, e.g. steward/gate/decision.")],
                input_file: Annotated[Path, typer.Option(
                    "--input", help="JSON file: the input, or {\"input\": ...} as OPA takes "
                    "it (the rules/examples files).")],
                rules: RulesDir = DEFAULT_RULES,
                opa_url: Annotated[str | None, typer.Option(
                    help="Evaluate on this OPA server instead of embedded.")] = None) -> None:
    """Evaluate one data path for one input; print the result (exit 1 on engine error)."""
    from steward.governance.embedded import EmbeddedEngine
    from steward.governance.opa import OpaEngine

    doc = json.loads(input_file.read_text())
    inp = doc["input"] if isinstance(doc, dict) and "input" in doc else doc
    try:
        engine = (OpaEngine(opa_url, rules_dir=rules) if opa_url else EmbeddedEngine(rules))
    except ConfigError as exc:
        typer.echo(f"ERROR {exc.reason}", err=True)
        raise typer.Exit(2) from exc
    ev = engine.evaluate(path, inp)
    typer.echo(json.dumps({"result": ev.result, "revision": ev.revision, "engine": ev.engine,
                           "elapsed_ms": round(ev.elapsed_ms, 3), "error": ev.error}, indent=2))
    if ev.error:
        raise typer.Exit(1)
