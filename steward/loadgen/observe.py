"""What the load generator watches while it sends: canaries that regress on cue (and
double as probes for arrival -> stored), the store's counter, the actions topic, and the
resident memory of every process of the stack.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

BASE, CANARY = "1.0.0", "1.1.0"
ROLLED_BACK = "steward.model.rolled_back"
SINK_STAGE = "telemetry-sink"


def canary_specs(keys: list[tuple[str, str]], window_s: int, grace_s: float,
                 early: bool = False) -> list[dict]:
    """The canary-latency settings (STEWARD_CANARIES) the stack needs for these canaries;
    `early`: judge open windows as records arrive (`CanarySpec.early`)."""
    return [{"model": m, "site": s, "baseline_version": BASE, "canary_version": CANARY,
             "factor": 1.5, "window_s": window_s, "grace_s": grace_s, "min_samples": 8,
             "early": early}
            for m, s in keys]


class Canaries:
    """One sender, one POST per tick: per canaried (model, site) four baseline and four
    canary records, the canary ones `slow` times slower from `inject_at[i]` on. Every
    record is also a probe: its send time is kept to time its arrival in the store."""

    def __init__(self, url: str, keys: list[tuple[str, str]], node: str, run: str,
                 tick_s: float = 0.1, slow: float = 3.0, headers: dict | None = None) -> None:
        self.url, self.keys, self.node, self.run = url, keys, node, run
        self.tick_s, self.slow, self.headers = tick_s, slow, headers or {}
        self.inject_at = [float("inf")] * len(keys)
        self.sent_at: dict[int, float] = {}
        """Tick -> wall-clock time its POST went out."""
        self.regressed: list[list[tuple[float, float]]] = [[] for _ in keys]
        """Per key: (event time, ack time) of every tick that carried regressed records."""
        self.sent = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="canaries")

    def start(self) -> Canaries:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=30)

    def _records(self, tick: int, now: float) -> tuple[list[dict], list[int]]:
        ts = datetime.fromtimestamp(now, UTC).isoformat()
        out, slow_keys = [], []
        for i, (model, site) in enumerate(self.keys):
            slow = now >= self.inject_at[i]
            if slow:
                slow_keys.append(i)
            for j in range(8):
                version = BASE if j < 4 else CANARY
                ms = 20.0 + (tick * 31 + j * 7) % 5
                if version == CANARY and slow:
                    ms *= self.slow
                out.append({"id": f"{self.run}-c{tick}-{i}-{j}", "model": model,
                            "version": version, "site": site, "tier": "edge",
                            "node": self.node, "ts": ts, "latency_ms": ms})
        return out, slow_keys

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30, headers=self.headers) as client:
            tick, next_at = 0, time.time()
            while not self._stop.is_set():
                now = time.time()
                records, slow_keys = self._records(tick, now)
                self.sent_at[tick] = now
                try:
                    client.post("/v1/inferences", json={"records": records}).raise_for_status()
                except httpx.HTTPError:
                    pass  # counted as missing probes; the regression stays on its time
                else:
                    acked = time.time()
                    for i in slow_keys:
                        self.regressed[i].append((now, acked))
                    self.sent += len(records)
                tick += 1
                next_at += self.tick_s
                self._stop.wait(max(0.0, next_at - time.time()))


class StoreWatch:
    """Polls the API: the telemetry sink's record counter (from /metrics) once a second,
    and the canaries' probe records (GET /inferences?node=...) as they are stored."""

    def __init__(self, api_url: str, canaries: Canaries | None, interval_s: float = 0.05,
                 headers: dict | None = None) -> None:
        self.client = httpx.Client(base_url=api_url, timeout=10, headers=headers or {})
        self.canaries = canaries
        self.interval_s = interval_s
        self.stored: list[tuple[float, float]] = []
        """(monotonic time, records the telemetry sink handled so far)."""
        self.probe_latency: list[float] = []
        self._after = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="store-watch")

    def start(self) -> StoreWatch:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=30)
        self.client.close()

    def count(self) -> float | None:
        try:
            text = self.client.get("/metrics").text
        except httpx.HTTPError:
            return None
        return sum(s.value for fam in text_string_to_metric_families(text)
                   if fam.name == "steward_stream_records"
                   for s in fam.samples if s.name.endswith("_total")
                   and s.labels.get("stage") == SINK_STAGE and s.labels.get("outcome") == "ok")

    def _probes(self) -> None:
        if self.canaries is None:
            return
        while True:
            try:
                page = self.client.get("/inferences", params={
                    "node": self.canaries.node, "after": self._after, "limit": 1000}).json()
            except (httpx.HTTPError, ValueError):
                return
            seen = time.time()
            for rec in page.get("records", []):
                tick = int(rec["id"].split("-c", 1)[1].split("-", 1)[0])
                sent = self.canaries.sent_at.get(tick)
                if sent is not None:
                    self.probe_latency.append(seen - sent)
            self._after = page.get("next_after", self._after)
            if not page.get("has_more"):
                return

    def _run(self) -> None:
        next_count = 0.0
        while not self._stop.is_set():
            if time.monotonic() >= next_count:
                value = self.count()
                if value is not None:
                    self.stored.append((time.monotonic(), value))
                next_count = time.monotonic() + 1.0
            self._probes()
            self._stop.wait(self.interval_s)


class ActionsWatch:
    """Reads the actions topic from its start (bare consumer, no group) and keeps every
    rollback of the canaried models with the time it was read."""

    def __init__(self, lines: Iterator[str], models: set[str]) -> None:
        self.lines, self.models = lines, models
        self.rollbacks: list[tuple[float, dict]] = []
        self.thread = threading.Thread(target=self._run, daemon=True, name="actions-watch")

    def start(self) -> ActionsWatch:
        self.thread.start()
        return self

    def _run(self) -> None:
        import json

        for line in self.lines:
            read = time.time()
            event = json.loads(line)
            data = event.get("data") or {}
            if event.get("type") == ROLLED_BACK and data.get("model") in self.models:
                self.rollbacks.append((read, data))


def rss_mb(pid: int) -> float | None:
    """Resident set size of a process in MB (from /proc), None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def find_pids() -> dict[str, int]:
    """Processes of a running stack on this machine, by their `steward` sub-command."""
    out: dict[str, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "steward.cli" not in argv and not any(a.endswith("/steward") for a in argv[:2]):
            continue
        rest = argv[argv.index("steward.cli") + 1:] if "steward.cli" in argv else argv[2:]
        if rest and rest[0] in ("api", "collector", "processor", "agent"):
            name = rest[1] if rest[0] == "processor" and len(rest) > 1 else rest[0]
            out[name] = int(proc.name)
    return out


@dataclass
class RssWatch:
    """Samples the RSS of named processes once a second."""

    pids: dict[str, int]
    interval_s: float = 1.0
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="rss-watch")

    def start(self) -> RssWatch:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        began = time.monotonic()
        while True:
            for name, pid in self.pids.items():
                mb = rss_mb(pid)
                if mb is not None:
                    self.series.setdefault(name, []).append((time.monotonic() - began, mb))
            if self._stop.wait(self.interval_s):
                return
