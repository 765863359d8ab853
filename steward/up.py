"""`steward up`: the whole service on one machine, each part its own process.

Starts the embedded broker (unless given an existing Kafka), creates topics,
then the collector, the processors and the API/sink as child processes (and, when
asked, an edge agent forwarding to the collector), waits until each answers, and
prints events as they are stored. Ctrl-C or SIGTERM stops everything in reverse order.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from steward.broker import EmbeddedBroker, free_port
from steward.bus.service import prepare
from steward.errors import Unavailable
from steward.settings import KafkaSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpOptions:
    bootstrap_servers: str | None = None
    data_dir: Path = Path("data")
    otlp_port: int = 4318
    api_port: int = 8080
    kafka_port: int = 9092
    host: str = "127.0.0.1"
    topic_prefix: str = ""
    demo: bool = False
    ready_timeout_s: float = 120.0
    """How long each service may take to answer /readyz before `up` gives up."""
    processors: tuple[str, ...] = (
        "canary-latency", "drift-judge+rollout-samples+fleet-sightings", "retrain-trigger",
        "governance-gate", "rollout", "fleet")
    """Three of the stages that read every inference record run as one consumer on one
    machine (`steward.bus.composite`: one decode); compose runs each on its own. The
    canary judge stays apart: it decodes only the keys it watches, and a rollback must
    not wait behind a drift judgement in the same loop."""
    canaries: list[dict] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)
    agent_env: dict[str, str] | None = None
    """Also run an edge agent (`STEWARD_AGENT_*` settings) forwarding to the collector, on
    a free port and a fresh spool in `data_dir/edge-agent`."""
    processor_env: dict[str, dict[str, str]] = field(default_factory=dict)
    """Extra environment per processor name, e.g. its own `STEWARD_METRICS_PORT`."""


class Stack:
    def __init__(self, opts: UpOptions) -> None:
        self.opts = opts
        self.broker: EmbeddedBroker | None = None
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.bootstrap = opts.bootstrap_servers or ""
        self.started = time.monotonic()
        self.agent_port: int | None = None

    @property
    def collector_url(self) -> str:
        return f"http://{self.opts.host}:{self.opts.otlp_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.opts.host}:{self.opts.api_port}"

    @property
    def charts_url(self) -> str:
        """The API's built-in chart page (GET /ui)."""
        return f"{self.api_url}/ui"

    @property
    def agent_url(self) -> str | None:
        return f"http://{self.opts.host}:{self.agent_port}" if self.agent_port else None

    def start(self) -> None:
        o = self.opts
        o.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.bootstrap:
            port = o.kafka_port or free_port()
            self.broker = EmbeddedBroker(port, o.host, log_file=o.data_dir / "broker.log").start()
            self.bootstrap = self.broker.bootstrap_servers
            log.info("embedded broker on %s (memory only: a restart loses its data)",
                     self.bootstrap)
        else:
            log.info("using Kafka at %s", self.bootstrap)
        prepare(KafkaSettings(bootstrap_servers=self.bootstrap, topic_prefix=o.topic_prefix))
        self._spawn("api", ["api", "--port", str(o.api_port), "--host", o.host,
                            "--data-dir", str(o.data_dir)])
        for name in o.processors:
            self._spawn(name, ["processor", name], o.processor_env.get(name))
        self._spawn("collector", ["collector", "--port", str(o.otlp_port), "--host", o.host])
        self._wait_ready(f"{self.api_url}/readyz", "API")
        self._wait_ready(f"{self.collector_url}/readyz", "collector")
        self._spawn("webhooks", ["webhooks", "run", "--data-dir", str(o.data_dir)])
        if o.agent_env is not None:
            self._start_agent(o.agent_env)
        log.info("ready in %.1fs: OTLP/HTTP %s  API %s/events  metrics %s/metrics",
                 time.monotonic() - self.started, self.collector_url, self.api_url, self.api_url)
        log.info("charts: %s (live charts of the dashboards' signals, no Grafana needed)",
                 self.charts_url)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["STEWARD_KAFKA__BOOTSTRAP_SERVERS"] = self.bootstrap
        env["STEWARD_KAFKA__TOPIC_PREFIX"] = self.opts.topic_prefix
        env["STEWARD_KAFKA__CREATE_TOPICS"] = "false"
        env["STEWARD_API_URL"] = self.api_url
        shipped = Path(__file__).resolve().parents[1] / "rules"
        if "STEWARD_GOVERNANCE__RULES_DIR" not in env and shipped.is_dir():
            env["STEWARD_GOVERNANCE__RULES_DIR"] = str(shipped)  # wherever `up` is run from
        if self.opts.canaries:
            env["STEWARD_CANARIES"] = json.dumps(self.opts.canaries)
        env.update(self.opts.extra_env)
        return env

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        cmd = [sys.executable, "-m", "steward.cli", *args]
        self.children.append((name, subprocess.Popen(cmd, env={**self._env(), **(env or {})})))

    def _start_agent(self, env: dict[str, str]) -> None:
        """An edge agent in front of the collector. Its spool starts empty: what an earlier
        run left there belongs to a broker and a store this run does not have."""
        spool = self.opts.data_dir / "edge-agent"
        shutil.rmtree(spool, ignore_errors=True)
        self.agent_port = free_port()
        self._spawn("edge-agent", ["agent", "--collector-url", self.collector_url,
                                   "--spool-dir", str(spool), "--port", str(self.agent_port),
                                   "--host", self.opts.host],
                    {"STEWARD_AGENT_PROFILES__API_URL": self.api_url, **env})
        self._wait_ready(f"{self.agent_url}/readyz", "edge agent")
        log.info("edge agent on %s, forwarding to %s", self.agent_url, self.collector_url)

    def _wait_ready(self, url: str, what: str) -> None:
        timeout_s = self.opts.ready_timeout_s
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_children()
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise Unavailable(f"{what} not ready at {url} after {timeout_s}s")

    def check_children(self) -> None:
        for name, proc in self.children:
            if proc.poll() is not None:
                raise Unavailable(f"{name} exited with code {proc.returncode}")

    def watch_events(self, stop: threading.Event) -> None:
        """Print each stored event once, as it arrives (polls `GET /events`)."""
        after = 0
        with httpx.Client(base_url=self.api_url, timeout=5.0) as client:
            while not stop.wait(1.0):
                self.check_children()
                try:
                    page = client.get("/events", params={"after": after, "limit": 100}).json()
                except (httpx.HTTPError, ValueError):
                    continue
                for event in page["events"]:
                    print(describe(event, time.monotonic() - self.started), flush=True)
                after = page["next_after"]

    def stop(self) -> None:
        for _name, proc in reversed(self.children):
            if proc.poll() is None:
                proc.terminate()
        for name, proc in reversed(self.children):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", name)
                proc.kill()
        self.children.clear()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None


def describe(event: dict, elapsed_s: float) -> str:
    """One readable line for an event."""
    data = event.get("data") or {}
    reason = data.get("reason", "")
    if not reason and "drifted_columns" in data:
        reason = (f"drift at {', '.join(data['sites'])} in {', '.join(data['drifted_columns'])}"
                  f" ({data['rule']})")
    if not reason and "reasons" in data:  # a denial
        reason = "denied: " + "; ".join(data["reasons"])
    if event.get("decisionid"):
        reason += (f"\n          allowed by policy revision {event.get('policyrevision')} "
                   f"(decision {event['decisionid']})")
    return (f"[{elapsed_s:6.1f}s] EVENT {event.get('type')} subject={event.get('subject')} "
            f"id={event.get('id')}" + (f"\n          {reason.strip()}" if reason else ""))
