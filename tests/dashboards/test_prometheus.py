"""A real Prometheus scraping a real Steward: `steward up --demo`'s stack (API, collector,
processors with their metrics ports, the edge agent) under demo traffic, GPU samples of a
MIG H100 posted to the collector as DCGM text, then every panel expression of every
dashboard and every alert rule evaluated by Prometheus itself. promtool checks the rule
files and the shipped config."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from steward import demo as demo_mod
from steward.broker import free_port
from steward.up import Stack, UpOptions
from tests.dashboards.support import (
    ALERTS,
    PROMETHEUS_CONFIG,
    REPO,
    alert_rules,
    metric_names,
    panel_exprs,
    substitute,
    variable_queries,
)
from tests.gpu_support import exposition, h100_rows

PROMETHEUS, PROMTOOL = shutil.which("prometheus"), shutil.which("promtool")
NEEDS = "the prometheus binary is not installed (`make test` installs Debian's prometheus " \
        "package when it runs as root with apt-get; otherwise install it yourself)"
PROCESSORS = ("canary-latency", "drift-judge", "retrain-trigger", "governance-gate",
              "gpu-usage", "gpu-budget", "fleet-sightings", "fleet", "rollout-samples",
              "rollout")
ALERT_ONLY_ON_FAILURE = {"steward_stream_errors_total"}
"""Alert rules may watch families that have no series while all is well."""


@pytest.mark.skipif(PROMTOOL is None, reason=NEEDS)
def test_promtool_checks_the_rules_and_the_shipped_config() -> None:
    out = subprocess.run([PROMTOOL, "check", "rules", *map(str, ALERTS)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    out = subprocess.run([PROMTOOL, "check", "config", str(PROMETHEUS_CONFIG)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 rule files found" in out.stdout


def _gpu_feed(collector_url: str, shared_data: Path, stop: threading.Event) -> None:
    """The test fixture's MIG H100 at shop-lyon (whose inference records the store holds,
    so cost per 1,000 inferences has both halves), stamped now, every 2 s."""
    while not stop.wait(2.0):
        now = datetime.now(UTC)
        rows = [(name, labels, value, now) for name, labels, value, _ in h100_rows()]
        text = exposition(rows, shared_data)
        # one reading per series, the fixture's later one (its 2g slice near full memory):
        # both of the fixture's timestamps are `now` here
        seen, lines = set(), []
        for line in reversed(text.splitlines()):
            key = line.rsplit(" ", 2)[0]
            if line.startswith("#") or key not in seen:
                seen.add(key)
                lines.insert(0, line)
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(f"{collector_url}/v1/gpu/dcgm", params={"site": "shop-lyon",
                       "tier": "edge"}, content="\n".join(lines) + "\n", timeout=5)


def _poison_pill_and_a_denial(bootstrap: str) -> None:
    """One undecodable message on the inference topic (the sinks and the drift judge
    dead-letter it), and one retraining proposal the shipped policies deny (it names no
    team), so the dead-letter and denial series exist."""
    from kafka import KafkaProducer

    from steward import topics as T
    from steward.schema import EventType, make_event, to_kafka
    from steward.schema.drift import RetrainRequested, WindowRef

    data = RetrainRequested(
        model="churn", version="2.0.0", trigger_id="t1", sites=["shop-lyon"],
        windows=[WindowRef(site="shop-lyon", start="s", end="e", verdict_id="v1",
                           drifted_columns=["amount"])],
        drifted_columns=["amount"], method="calibrated", rule="2 of 3", cooldown_s=60)
    event = make_event(EventType.RETRAIN_REQUESTED, source="/steward/tests/dashboards",
                       subject="churn/2.0.0", data=data, key="churn",
                       time=datetime.now(UTC), facts=("dashboards",))
    key, value, headers = to_kafka(event)
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send(T.INFERENCE.full(""), b"not a batch", key=b"poison/pill").get(timeout=30)
    producer.send(T.PROPOSALS.full(""), value, key=key, headers=headers).get(timeout=30)
    producer.close()


def _prometheus_config(tmp: Path, stack: Stack, metrics_ports: dict[str, int]) -> Path:
    host = stack.opts.host
    jobs = [("steward-collector", [f"{host}:{stack.opts.otlp_port}"], {}),
            ("steward-api", [f"{host}:{stack.opts.api_port}"], {}),
            ("steward-processor", [f"{host}:{p}" for p in metrics_ports.values()], {}),
            ("steward-agent", [f"{host}:{stack.agent_port}"], {"site": demo_mod.DRIFT_SITE})]
    doc = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
           "rule_files": [str(p) for p in ALERTS],
           "scrape_configs": [{"job_name": job, "static_configs": [
               {"targets": targets, **({"labels": labels} if labels else {})}]}
               for job, targets, labels in jobs]}
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _wait(what: str, predicate: Any, timeout_s: float, stack: Stack) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stack.check_children()
        try:
            value = predicate()
        except (httpx.HTTPError, ValueError, KeyError):
            value = None
        if value:
            return value
        time.sleep(1)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what}")


@pytest.mark.integration
@pytest.mark.timeout(240)
@pytest.mark.skipif(PROMETHEUS is None, reason=NEEDS)
def test_every_panel_and_alert_expression_returns_data(tmp_path: Path, shared_data: Path):
    prices = tmp_path / "gpu-prices.toml"
    prices.write_text((REPO / "config" / "gpu-prices.toml").read_text()
                      + '\n[sites."shop-lyon"]\ncloud = "aws"\nflavour = "on-demand"\n')
    metrics_ports = {name: free_port() for name in PROCESSORS}
    env = {**demo_mod.DEMO_DRIFT_ENV, "STEWARD_GPU_PRICES_FILE": str(prices),
           "STEWARD_GPU__WINDOW_S": "5", "STEWARD_GPU__GRACE_S": "1",
           "STEWARD_BUDGETS": '[{"team": "risk", "usd": 0.0001, "period": "day"}]'}
    opts = UpOptions(data_dir=tmp_path / "data", otlp_port=free_port(), api_port=free_port(),
                     kafka_port=0, demo=True, processors=PROCESSORS,
                     canaries=[demo_mod.DEMO_CANARY], extra_env=env,
                     agent_env=demo_mod.DEMO_AGENT_ENV,
                     processor_env={name: {"STEWARD_METRICS_PORT": str(port)}
                                    for name, port in metrics_ports.items()})
    stack, stop, prom = Stack(opts), threading.Event(), None
    try:
        stack.start()
        demo_mod.register_reference(stack.api_url)
        cfg = demo_mod.DemoConfig(collector_url=stack.collector_url, agent_url=stack.agent_url,
                                  api_url=stack.api_url)  # registers 1.4.1: a rollout runs
        threading.Thread(target=demo_mod.run, args=(cfg, stop), daemon=True).start()
        threading.Thread(target=_gpu_feed, args=(stack.collector_url, shared_data, stop),
                         daemon=True).start()
        _poison_pill_and_a_denial(stack.bootstrap)
        prom_port = free_port()
        prom = subprocess.Popen(
            [PROMETHEUS, f"--config.file={_prometheus_config(tmp_path, stack, metrics_ports)}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "w"))  # noqa: SIM115
        url = f"http://127.0.0.1:{prom_port}/api/v1"

        def events(kind: str) -> list[Any]:
            return httpx.get(f"{stack.api_url}/events", params={"type": kind}).json()["events"]

        _wait("a rollback", lambda: events("steward.model.rolled_back"), 90, stack)
        _wait("a retraining request", lambda: events("steward.retrain.requested"), 90, stack)
        _wait("a budget alert", lambda: events("steward.budget.exceeded"), 60, stack)
        _wait("a denial", lambda: events("steward.action.denied"), 30, stack)
        _wait("a GPU alert", lambda: events("steward.gpu.partition.memory_pressure"), 30, stack)
        _wait("a rollout analysis run", lambda: "steward_rollout_score{" in httpx.get(
            f"{stack.api_url}/metrics").text, 90, stack)
        _wait("every target up", lambda: (r := httpx.get(f"{url}/targets").json()["data"]
                                          ["activeTargets"]) and all(
            t["health"] == "up" for t in r), 30, stack)
        time.sleep(5)  # a few more scrapes for rate() and increase()

        def query(expr: str) -> tuple[str, list[Any], str]:
            body = httpx.get(f"{url}/query", params={"query": expr}, timeout=10).json()
            return body["status"], body.get("data", {}).get("result", []), body.get("error", "")

        failures = []
        for uid, title, expr in panel_exprs():
            status, result, error = query(substitute(expr))
            if status != "success" or not result:
                failures.append(f"{uid} / {title}: {status} {error or 'no data'}: {expr}")
        for uid, name, metric, label in variable_queries():
            values = httpx.get(f"{url}/label/{label}/values",
                               params={"match[]": metric}).json()["data"]
            if not values:
                failures.append(f"{uid}: variable {name} has no values")
        for uid, title, expr in panel_exprs():  # a concrete choice filters, too
            status, _, error = query(substitute(expr, {"model": "fraud-detector",
                                                        "site": "shop-lyon"}))
            if status != "success":
                failures.append(f"{uid} / {title} (model and site chosen): {error}")
        for rule in alert_rules():
            status, _, error = query(rule["expr"])
            if status != "success":
                failures.append(f"alert {rule['alert']}: {error}")
            for name in metric_names(rule["expr"]) - ALERT_ONLY_ON_FAILURE:
                _, result, _ = query(f'count({{__name__=~"{name}(_bucket)?"}})')
                if not result:
                    failures.append(f"alert {rule['alert']}: no series of {name}")
        groups = httpx.get(f"{url}/rules").json()["data"]["groups"]
        evaluated = [r for g in groups for r in g["rules"]]
        assert len(evaluated) == len(alert_rules())
        failures += [f"alert {r['name']} evaluates with {r['health']}: {r.get('lastError')}"
                     for r in evaluated if r["health"] != "ok"]
        assert not failures, "\n".join(failures)
    finally:
        stop.set()
        if prom is not None:
            prom.terminate()
            prom.wait(timeout=15)
        stack.stop()
