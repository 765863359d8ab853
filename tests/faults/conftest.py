"""Fault-suite parts: Steward's deployables as real child processes (`python -m steward.cli
...`) on an embedded broker of the test's own, killed (SIGKILL) or stopped (SIGTERM) and
started again on the same ports; and counters for what went in, what was stored and what
was emitted, read from outside (the API over HTTP, the actions topic by a bare consumer).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloudevents.core.v1.event import CloudEvent
from kafka import KafkaConsumer

from steward import topics as T
from steward.broker import EmbeddedBroker, free_port
from steward.bus.admin import ensure_topics, wait_ready
from steward.bus.producer import Out
from steward.schema import to_kafka
from steward.settings import KafkaSettings

REPO = Path(__file__).resolve().parents[2]
T0 = (datetime.now(UTC) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
"""Record time: an hour ahead, so no window closes on the wall clock during a test; only a
later record (the event-time watermark) closes one."""


class Child:
    """One deployable in a child process: started, killed and started again with the same
    command line, environment and ports; its output appended to one log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path,
                 ready_url: str | None) -> None:
        self.name, self.args, self.env, self.log, self.ready_url = name, args, env, log, ready_url
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> Child:
        """Start the process; with `wait`, return once it answers `ready_url`."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "steward.cli", *self.args],
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         cwd=REPO)
        return self.wait_ready() if wait else self

    def wait_ready(self, timeout_s: float = 90.0) -> Child:
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        while self.ready_url and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(self.ready_url, timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        if self.ready_url:
            pytest.fail(f"{self.name} not ready at {self.ready_url}:\n{self.tail()}")
        return self

    def kill(self, sig: int = signal.SIGKILL) -> int:
        """Send `sig` and wait for the process to end; its exit code."""
        assert self.proc is not None and self.proc.poll() is None, f"{self.name} is not running"
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"{self.name} ignored signal {sig}:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


class Stack:
    """A test's own broker and the deployables it starts, all on free loopback ports."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.broker = EmbeddedBroker(free_port(), log_file=tmp / "broker.log")
        self.kafka = KafkaSettings(bootstrap_servers=self.broker.bootstrap_servers)
        self.children: list[Child] = []
        self.api_port, self.collector_port = free_port(), free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.collector_url = f"http://127.0.0.1:{self.collector_port}"

    def start_broker(self) -> None:
        """Start the broker (again, same port: empty) and create Steward's topics."""
        self.broker.start()
        wait_ready(self.kafka)
        ensure_topics(self.kafka)

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEWARD_")}
        env.update({"STEWARD_KAFKA__BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
                    "STEWARD_KAFKA__CREATE_TOPICS": "false",
                    "STEWARD_KAFKA__ACK_TIMEOUT_S": "3",
                    "STEWARD_API_URL": self.api_url, "STEWARD_RETRY_AFTER_S": "1",
                    "STEWARD_GOVERNANCE__RULES_DIR": str(REPO / "rules"),
                    "PYTHONUNBUFFERED": "1", **(extra or {})})
        return env

    def child(self, name: str, args: list[str], ready_url: str | None = None,
              env: dict[str, str] | None = None, wait: bool = False) -> Child:
        """Start a deployable; not waited for unless `wait` (see `ready`): they start in
        parallel, which on two cores saves most of a test's start-up."""
        c = Child(name, args, self.env(env), self.tmp / f"{name}.log", ready_url)
        self.children.append(c)
        return c.start(wait)

    def ready(self) -> None:
        """Wait until every child started so far answers."""
        for c in self.children:
            c.wait_ready()

    def collector(self) -> Child:
        return self.child("collector", ["collector", "--port", str(self.collector_port)],
                          f"{self.collector_url}/readyz")

    def api(self) -> Child:
        return self.child("api", ["api", "--port", str(self.api_port), "--data-dir",
                                  str(self.tmp / "data")], f"{self.api_url}/readyz")

    def processor(self, name: str, env: dict[str, str] | None = None) -> Child:
        """A processor; ready once its metrics answer (it joins its group on its own)."""
        port = free_port()
        return self.child(name, ["processor", name], f"http://127.0.0.1:{port}/metrics",
                          {"STEWARD_METRICS_PORT": str(port), **(env or {})})

    def canary(self) -> Child:
        return self.processor("canary-latency", {"STEWARD_CANARIES": json.dumps([CANARY])})

    def agent(self, collector_url: str, **env: str) -> tuple[Child, str]:
        port = free_port()
        child = self.child("agent", ["agent", "--collector-url", collector_url, "--port",
                                     str(port), "--spool-dir", str(self.tmp / "spool")],
                           f"http://127.0.0.1:{port}/readyz",
                           {"STEWARD_AGENT_BACKOFF_BASE_S": "0.05",
                            "STEWARD_AGENT_BACKOFF_CAP_S": "0.5", **env})
        return child, f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        for c in reversed(self.children):
            c.stop()
        self.broker.stop()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = Stack(tmp_path)
    s.start_broker()
    try:
        yield s
    finally:
        s.stop()


# --- the workload: inference records, and canary windows that end in one rollback each ----

CANARY = {"model": "m", "baseline_version": "1", "canary_version": "2", "factor": 1.5,
          "window_s": 10, "grace_s": 0, "min_samples": 5}


def records(tag: str, n: int, site: str = "s0", version: str = "1", ms: float = 10.0,
            at: float = 0.0, model: str = "m") -> list[dict[str, Any]]:
    """`n` inference records with ids `tag-i`, 10 ms apart from `at` seconds past T0."""
    return [{"id": f"{tag}-{i}", "model": model, "version": version, "site": site,
             "tier": "edge", "ts": (T0 + timedelta(seconds=at + i * 0.01)).isoformat(),
             "latency_ms": ms} for i in range(n)]


def regression(site: str) -> list[dict[str, Any]]:
    """Window 0 at `site`: baseline at 10 ms, canary at 50 ms (5x: a rollback), and a
    baseline record 15 s on that closes the window."""
    return (records(f"{site}-base", 10, site) + records(f"{site}-canary", 10, site, "2", 50.0)
            + records(f"{site}-close", 1, site, at=15.0))


def action(i: int, tag: str = "a") -> Out:
    """An action as the governance gate puts it on the actions topic: a rollback of model
    `m` at site `{tag}{i}`, id `{tag}-rollback-{i}`."""
    event = CloudEvent({"id": f"{tag}-rollback-{i}", "source": "steward/faults",
                        "type": "steward.model.rolled_back", "subject": f"m/{tag}{i}",
                        "time": datetime.now(UTC), "partitionkey": "m"},
                       {"model": "m", "site": f"{tag}{i}"})
    key, value, headers = to_kafka(event)
    return Out(T.ACTIONS.full(), key, value, headers)


# --- counting, from outside --------------------------------------------------------------

def stored_ids(api_url: str, path: str = "/inferences", **filters: str) -> list[str]:
    """Every id the API serves at `path` (all pages), duplicates kept if it had any."""
    ids: list[str] = []
    after = 0
    while True:
        page = httpx.get(f"{api_url}{path}", params={**filters, "after": after, "limit": 1000},
                         timeout=10).json()
        rows = page["records"] if "records" in page else page["events"]
        ids += [r["id"] for r in rows]
        if not page["has_more"]:
            return ids
        after = page["next_after"]


def try_stored(api_url: str, path: str = "/inferences", **filters: str) -> list[str] | None:
    """`stored_ids`, or None while the API does not answer (it is being restarted)."""
    try:
        return stored_ids(api_url, path, **filters)
    except (httpx.TransportError, ValueError, KeyError):
        return None


def events_on(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """The CloudEvent attributes (`ce_*` headers) and `data` (JSON) of every message on
    `topic` now, read by a bare kafka-python consumer with no group."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=1500)
    try:
        return [{**{k.removeprefix("ce_"): v.decode() for k, v in (m.headers or [])},
                 "data": json.loads(m.value)} for m in consumer]
    finally:
        consumer.close()


def post(url: str, body: Any, deadline_s: float = 60.0) -> httpx.Response:
    """POST like an OTLP client: retry 429/502/503/504 and refused connections, honouring
    Retry-After, until a final answer."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            resp = httpx.post(url, json=body, timeout=10)
            if resp.status_code not in (429, 502, 503, 504):
                return resp
            wait = float(resp.headers.get("retry-after", "0.2"))
        except httpx.TransportError:
            wait = 0.2
        if time.monotonic() + wait > deadline:
            pytest.fail(f"POST {url} not accepted within {deadline_s}s")
        time.sleep(min(wait, 1.0))


def metric(url: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` at `url` whose labels include `labels`."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = httpx.get(url, timeout=2).text
    except httpx.TransportError:
        return 0.0
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))
