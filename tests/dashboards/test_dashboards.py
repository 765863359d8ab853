"""The shipped dashboards, alert rules and provisioning files: structure, and that every
metric they use is one Steward exports and every steward_ family Steward exports is
charted (or listed as uncharted, with the reason)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.dashboards.support import (
    DASHBOARDS,
    TEMPLATE_VARS,
    UNCHARTED,
    alert_rules,
    dashboards,
    exported_families,
    metric_names,
    panel_exprs,
    panels,
    used_families,
    variable_queries,
)

DATASOURCE = {"type": "prometheus", "uid": "steward-prometheus"}


def test_dashboards_are_current_grafana_json_with_unique_uids() -> None:
    docs = dashboards()
    assert {d["uid"] for d in docs} == {"steward-fleet", "steward-drift", "steward-gpu",
                                        "steward-cost", "steward-rollouts",
                                        "steward-governance"}
    assert len({d["title"] for d in docs}) == len(docs)
    for d in docs:
        assert d["schemaVersion"] >= 39, d["uid"]
        assert {"title", "uid", "panels", "templating", "time", "tags"} <= d.keys()
        ids = [p["id"] for p in panels(d)]
        assert len(ids) == len(set(ids)), f"{d['uid']}: duplicate panel ids"
        for p in panels(d):
            where = f"{d['uid']} / {p['title']}"
            assert p["datasource"] == DATASOURCE, where
            assert p["targets"], f"{where}: no targets"
            refs = [t["refId"] for t in p["targets"]]
            assert len(refs) == len(set(refs)), where
            for t in p["targets"]:
                assert t["datasource"] == DATASOURCE and t["expr"].strip(), where
            pos = p["gridPos"]
            assert pos["x"] + pos["w"] <= 24 and pos["w"] > 0 and pos["h"] > 0, where


def test_template_variables_come_from_label_values() -> None:
    found = variable_queries()
    assert set(TEMPLATE_VARS) <= {name for _, name, _, _ in found}
    for d in dashboards():
        for v in d["templating"]["list"]:
            assert v["datasource"] == DATASOURCE and v["allValue"] == ".*", v["name"]
    for uid, name, _metric, label in found:
        assert name == label, f"{uid}: variable {name} reads label {label}"
    for uid, title, expr in panel_exprs():  # filters use regex matchers, so All (.*) works
        for name in TEMPLATE_VARS:
            assert f'{name}="${name}"' not in expr, f"{uid} / {title}: use =~ for ${name}"


def test_provisioning_files() -> None:
    ds = yaml.safe_load((DASHBOARDS / "provisioning/datasources/prometheus.yml").read_text())
    assert ds["apiVersion"] == 1
    (source,) = ds["datasources"]
    assert (source["uid"], source["type"]) == (DATASOURCE["uid"], "prometheus")
    prov = yaml.safe_load((DASHBOARDS / "provisioning/dashboards/steward.yml").read_text())
    (provider,) = prov["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


def test_alert_rules_have_severity_and_summary() -> None:
    rules = alert_rules()
    assert len(rules) >= 10
    names = Counter(r["alert"] for r in rules)
    assert max(names.values()) == 1, names
    for r in rules:
        assert r["labels"]["severity"] in ("page", "ticket"), r["alert"]
        assert r["annotations"]["summary"], r["alert"]


def test_every_metric_used_is_exported_and_every_family_is_charted(tmp_path: Path) -> None:
    exported = exported_families(tmp_path)
    steward = {name for name in exported if name.startswith("steward_")}
    assert len(steward) > 40, sorted(exported)
    charted = used_families({m for _, _, e in panel_exprs() for m in metric_names(e)},
                            exported)
    alerted = used_families({m for r in alert_rules() for m in metric_names(r["expr"])},
                            exported)
    assert not charted - steward, f"dashboards use what nobody exports: {charted - steward}"
    assert not alerted - steward, f"alert rules use what nobody exports: {alerted - steward}"
    assert not set(UNCHARTED) - steward, "UNCHARTED lists families that no longer exist"
    assert not set(UNCHARTED) & charted, "UNCHARTED lists families a dashboard charts"
    missing = steward - charted - set(UNCHARTED)
    assert not missing, f"exported but in no dashboard (chart them or list them): {missing}"


@pytest.mark.parametrize("name", ["steward_gpu_partition_compute_use_ratio",
                                  "steward_collector_publish_duration_seconds",
                                  "steward_agent_spool_bytes", "steward_drift_share_ratio"])
def test_names_follow_conventions(tmp_path: Path, name: str) -> None:
    exported = exported_families(tmp_path)
    assert name in exported
    for family, kind in exported.items():
        if family.startswith("steward_"):
            assert (kind == "counter") == family.endswith("_total"), family
            assert not family.endswith(("_ms", "_milliseconds", "_kb", "_mb", "_percent")), \
                family
