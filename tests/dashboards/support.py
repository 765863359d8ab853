"""What the dashboard tests share: the shipped dashboards, alert rules and provisioning
files, every PromQL expression in them, and the metric families Steward exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry, generate_latest

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "dashboards"
JSON_DIR = DASHBOARDS / "json"
ALERTS = sorted((DASHBOARDS / "alerts").glob("*.yml"))
PROMETHEUS_CONFIG = DASHBOARDS / "prometheus" / "prometheus.yml"

TEMPLATE_VARS = ("model", "site", "tier", "team")
"""Every one of these is a template variable of at least one dashboard."""

UNCHARTED = {
    "steward_agent_spooled_entries_total": "entries mirror spooled_records; records are charted",
    "steward_agent_forwarded_entries_total": "entries mirror forwarded_records",
    "steward_agent_dropped_entries_total": "entries mirror dropped_records",
    "steward_agent_sampled_out_records_total": "sampling is a setting, not a health signal",
}
"""Exported steward_ families no dashboard charts, on purpose, and why."""

_METRIC = re.compile(r"\bsteward_[a-z0-9_]+")
_HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def dashboards() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(JSON_DIR.glob("*.json"))]


def panels(dash: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dash["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows


def panel_exprs() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, expr) for every target of every panel."""
    return [(d["uid"], p["title"], t["expr"]) for d in dashboards() for p in panels(d)
            for t in p.get("targets", [])]


def alert_rules() -> list[dict[str, Any]]:
    return [rule for path in ALERTS for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


def variable_queries() -> list[tuple[str, str, str, str]]:
    """(dashboard uid, variable, metric, label) of every label_values() variable."""
    out = []
    for d in dashboards():
        for v in d["templating"]["list"]:
            m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", v["query"]["query"])
            assert m, f"{d['uid']}: variable {v['name']} is not label_values(metric, label)"
            out.append((d["uid"], v["name"], m.group(1), m.group(2)))
    return out


def substitute(expr: str, variables: dict[str, str] | None = None) -> str:
    """The expression as Grafana would send it with every variable at All (`.*`)."""
    expr = expr.replace("$__rate_interval", "15s").replace("$__interval", "5s")
    for name in sorted({v for _, v, _, _ in variable_queries()}, key=len, reverse=True):
        value = (variables or {}).get(name, ".*")
        expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
    return expr


def metric_names(expr: str) -> set[str]:
    return set(_METRIC.findall(expr))


def exported_families(tmp: Path) -> dict[str, str]:
    """name -> type of every family Steward's processes register, as they expose them
    (`# TYPE` lines): the collector, the edge agent, the runner (processors and the API's
    sinks) and the API's store gauges."""
    from api.app import create_app
    from api.store import Store
    from collector.agent.metrics import AgentMetrics
    from collector.agent.spool import Totals
    from collector.metrics import CollectorMetrics
    from steward.bus.metrics import StreamMetrics

    registry = CollectorRegistry()
    CollectorMetrics(registry)
    StreamMetrics(registry)
    agent = AgentMetrics(registry)
    agent.watch(lambda: Totals(0, 0, 0, None, 0, 0), lambda: 0.0)
    store = Store(tmp / "steward.duckdb")
    try:
        create_app(store, registry, {})
        text = generate_latest(registry).decode()
    finally:
        store.close()
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    return {name: kind for name, kind in types.items()  # not the client's _created series
            if not (name.endswith("_created") and {f"{name[:-8]}_total", name[:-8]} & types.keys())}


def used_families(names: set[str], exported: dict[str, str]) -> set[str]:
    """Series names (x_bucket of a histogram) mapped to their family names."""
    out = set()
    for name in names:
        for suffix in _HISTOGRAM_SERIES:
            base = name.removesuffix(suffix)
            if base != name and exported.get(base) == "histogram":
                name = base
        out.add(name)
    return out
