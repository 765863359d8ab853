"""The CLI as a newcomer runs it: `steward up --demo` shows a rollback, and every process
stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from steward.broker import free_port


def _steward(*args: str, **kw) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "steward.cli", *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)


def _read_until(proc: subprocess.Popen[str], needle: str, timeout_s: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            lines.append(line)
            if needle in line:
                return lines
        elif proc.poll() is not None:
            break
        else:
            time.sleep(0.1)
    pytest.fail(f"{needle!r} not seen in {timeout_s}s; output:\n{''.join(lines[-40:])}")


def test_up_demo_shows_a_rollback_then_stops_cleanly(tmp_path: Path):
    otlp, api = free_port(), free_port()
    proc = _steward("up", "--demo", "--kafka-port", "0", "--otlp-port", str(otlp),
                    "--api-port", str(api), "--data-dir", str(tmp_path))
    try:
        # how soon a newcomer sees it is a figure for the docs, not an assert: bound only
        lines = _read_until(proc, "EVENT steward.model.rolled_back", timeout_s=150)
        assert any("subject=fraud-detector/eu-west-1" in line for line in lines)
        lines += _read_until(proc, "drift at factory-berlin in", timeout_s=90)
        assert any("EVENT steward.retrain.requested" in line for line in lines)
        # the demo registers the retrained version; its canary rollout starts (promoted
        # some 30 s later: not waited for here, to keep this test quick)
        lines += _read_until(proc, "EVENT steward.rollout.started", timeout_s=20)
        events = httpx.get(f"http://127.0.0.1:{api}/events").json()["events"]
        assert [e["data"]["canary_version"] for e in events
                if e["type"] == "steward.model.rolled_back"] == ["1.5.0"]
        (retrain,) = [e for e in events if e["type"] == "steward.retrain.requested"]
        (started,) = [e for e in events if e["type"] == "steward.rollout.started"]
        assert started["data"]["retrain_trigger_id"] == retrain["data"]["trigger_id"]
        assert (started["data"]["baseline_version"], started["data"]["canary_version"]) == \
            ("1.4.0", "1.4.1")
        assert retrain["data"]["sites"] == ["factory-berlin"]
        assert "temperature" in retrain["data"]["drifted_columns"]
        drifted = httpx.get(f"http://127.0.0.1:{api}/drift",  # its edge agent sends profiles
                            params={"site": "factory-berlin", "drift": True}).json()["verdicts"]
        assert drifted and {v["source"] for v in drifted} == {"profile"}
        assert {v["id"] for v in drifted} >= {w["verdict_id"] for w in retrain["data"]["windows"]}
        assert any(f"charts: http://127.0.0.1:{api}/ui" in line for line in lines)
        charts = {c["id"]: {s["name"]: s["values"] for s in c["series"]}  # what GET /ui draws
                  for c in httpx.get(f"http://127.0.0.1:{api}/ui/series").json()["charts"]}
        assert charts["rollouts"]["steward.model.rolled_back"][-1] == 1
        assert charts["sites"]["online"][-1] >= 1 and charts["ingest"]["telemetry.inference"]
        metrics = httpx.get(f"http://127.0.0.1:{otlp}/metrics").text
        assert 'steward_collector_records_total{outcome="accepted",signal="metrics"}' in metrics
        (agent,) = {int(m) for line in lines
                    for m in re.findall(r"edge agent at http://127\.0\.0\.1:(\d+)", line)}
        assert httpx.get(f"http://127.0.0.1:{agent}/readyz").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out[-3000:]
    for port in (otlp, api, agent):  # every child is gone: nothing listens any more
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)


def test_processor_exits_on_sigterm(broker):
    env = dict(os.environ, STEWARD_KAFKA__BOOTSTRAP_SERVERS=broker.bootstrap_servers,
               STEWARD_KAFKA__TOPIC_PREFIX="sigterm.")
    proc = _steward("processor", "canary-latency", env=env)
    _read_until(proc, "consuming", timeout_s=30)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out[-2000:]
    assert "stopped" in out


def test_unknown_processor_is_a_clear_error(broker):
    env = dict(os.environ, STEWARD_KAFKA__BOOTSTRAP_SERVERS=broker.bootstrap_servers)
    proc = _steward("processor", "no-such-thing", env=env)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "error: unknown processor 'no-such-thing'; known: canary-latency" in out
    assert "Traceback" not in out


def test_reference_add_registers_a_file(start_api, tmp_path: Path):
    api, _ = start_api()
    path = tmp_path / "ref.csv"
    path.write_text("amount,channel,score\n1.5,pos,0.2\n2.5,web,0.9\n")
    out = subprocess.run([sys.executable, "-m", "steward.cli", "reference", "add", str(path),
                          "--model", "fraud", "--version", "2.0", "--categorical", "channel",
                          "--prediction", "score", "--api-url", api.url],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "reference fraud 2.0: 2 rows" in out.stdout and "channel (categorical)" in out.stdout
    ref = httpx.get(f"{api.url}/references/fraud/2.0").json()
    assert ref["data"][1] == {"amount": 2.5, "channel": "web", "score": 0.9}
    bad = subprocess.run([sys.executable, "-m", "steward.cli", "reference", "add", str(path),
                          "--model", "fraud", "--version", "2.0", "--api-url", api.url],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "declare it categorical" in bad.stderr
