"""`steward fleet [split|savings]`: the fleet view of the API as readable tables.

Like `steward rollout`, the CLI only reads the API (`GET /fleet`, `/fleet/split`,
`/fleet/savings`); rendering is pure (API answer in, `rich` table out), so it is tested
without a terminal. `--json` prints the API's answer as is, for scripts.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from steward.rollout_cli import Api, Token, _call

fleet_app = typer.Typer(help="Which version runs where, edge versus cloud, what edge-first "
                             "saves (reads the API).")
Model = Annotated[str | None, typer.Option(help="Only this model.")]
Since = Annotated[datetime | None, typer.Option(help="Period start (default: the API's "
                                                     "fleet period before --until).")]
Until = Annotated[datetime | None, typer.Option(help="Period end (default: now).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")]


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def nodes_table(body: dict[str, Any]) -> Table:
    """One row per node: where, state, versions (expected when it differs), hardware."""
    t = Table(title="Fleet nodes")
    for col in ("model", "site", "node", "tier", "state", "silence s", "versions", "expected",
                "hardware", "backlog"):
        t.add_column(col, justify="right" if col in ("silence s", "backlog") else "left")
    for n in body["nodes"]:
        hw = n.get("hardware") or {}
        expected = ",".join((n.get("expected") or {}).get("versions", [])) or "-"
        versions = ",".join(n["versions"]) + (" (straggler)" if n["straggler"] else "")
        t.add_row(n["model"], n["site"], n["node"] or "-", n["tier"], n["state"],
                  _fmt(n["silence_s"], ".0f"), versions, expected,
                  " ".join(str(hw[k]) for k in ("accelerator", "runtime", "quantisation")
                           if hw.get(k)) or "-",
                  "-" if n.get("agent_backlog") is None else str(n["agent_backlog"]))
    for model, s in sorted(body["summary"].items()):
        t.caption = (t.caption + "; " if t.caption else "") + (
            f"{model}: {s['online']} online, {s['stale']} stale, {s['offline']} offline "
            f"({s['offline_share']:.0%}); stragglers at {', '.join(s['stragglers']) or 'none'}")
    return t


def split_table(body: dict[str, Any]) -> Table:
    """Per model and tier: requests, share, error rate, latency percentiles, spillover."""
    t = Table(title=f"Edge vs cloud, {body['since']} to {body['until']}")
    for col in ("model", "tier", "requests", "share", "errors", "p50 ms", "p95 ms", "p99 ms",
                "spillover"):
        t.add_column(col, justify="left" if col in ("model", "tier") else "right")
    for model, m in sorted(body["models"].items()):
        for tier, x in sorted(m["tiers"].items()):
            spill = _fmt(m["spillover_requests"], ".0f") if tier == "edge" else ""
            t.add_row(model, tier, _fmt(x["requests"], ".0f"), _fmt(x["share"], ".1%"),
                      _fmt(x["error_rate"], ".2%"),
                      *(_fmt(x["latency_ms"][p], ".1f") for p in ("p50", "p95", "p99")), spill)
    return t


def savings_table(body: dict[str, Any]) -> Table:
    """Per model: cost, the cloud-only counterfactual, savings; the assumptions below."""
    a = body["assumptions"]
    alt = a["alternative"]
    t = Table(title=f"Edge-first savings, {body['since']} to {body['until']}",
              caption=f"vs {alt['card']} {alt['flavour']} ({alt['cloud'] or 'any cloud'}) at "
                      f"{_fmt(alt['usd_per_gpu_hour'])} $/GPU-h; requests per GPU-hour "
                      f"{a['requests_per_gpu_hour']}; {a['period_hours']:g} h. "
                      f"{a['cost_model']}")
    for col in ("model", "requests", "actual $", "cloud-only $", "saved $", "saved %",
                "unpriced"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for model, m in sorted(body["models"].items()):
        t.add_row(model, _fmt(m["requests"], ".0f"), _fmt(m["actual_usd"]),
                  _fmt(m["cloud_only_usd"]), _fmt(m["savings_usd"]),
                  _fmt(m["savings_pct"], ".1f"), _fmt(m["unpriced_requests"], ".0f"))
    return t


def _period(model: str | None, since: datetime | None,
            until: datetime | None) -> dict[str, str]:
    params = {"model": model, "since": since and since.isoformat(),
              "until": until and until.isoformat()}
    return {k: v for k, v in params.items() if v}


def _show(body: Any, table: Table, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(body, indent=2))
    else:
        Console().print(table)


@fleet_app.callback(invoke_without_command=True)
def fleet(ctx: typer.Context, api: Api = "http://127.0.0.1:8080", token: Token = None,
          model: Model = None, site: Annotated[str | None, typer.Option()] = None,
          tier: Annotated[str | None, typer.Option(help="edge or cloud")] = None,
          state: Annotated[str | None, typer.Option(help="online, stale or offline")] = None,
          as_json: AsJson = False) -> None:
    """Every node: versions, state, hardware, spool backlog, stragglers."""
    if ctx.invoked_subcommand is not None:
        return
    params = {k: v for k, v in {"model": model, "site": site, "tier": tier,
                                "state": state}.items() if v}
    body = _call("GET", api, "/fleet", token, params=params)
    _show(body, nodes_table(body), as_json)


@fleet_app.command("split")
def split(api: Api = "http://127.0.0.1:8080", token: Token = None, model: Model = None,
          since: Since = None, until: Until = None, as_json: AsJson = False) -> None:
    """Edge vs cloud per model: share, errors, latency percentiles, spillover."""
    body = _call("GET", api, "/fleet/split", token, params=_period(model, since, until))
    _show(body, split_table(body), as_json)


@fleet_app.command("savings")
def savings(api: Api = "http://127.0.0.1:8080", token: Token = None, model: Model = None,
            since: Since = None, until: Until = None, as_json: AsJson = False) -> None:
    """What edge-first saved against serving everything on the cloud alternative."""
    body = _call("GET", api, "/fleet/savings", token, params=_period(model, since, until))
    _show(body, savings_table(body), as_json)
