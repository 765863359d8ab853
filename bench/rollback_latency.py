"""Rollback latency under steady ingest: from the telemetry that crosses the line to the
rollback event on the actions topic, p50/p99 over N canaries that regress at known moments.

    .venv/bin/python bench/rollback_latency.py [--canaries 20] [--rate 600] [--window-s 2]
                                               [--grace-s 0.5] [--seed 0]

In one process, like the integration fixtures: the embedded broker, the collector app
served on a free port, the canary-latency runner and the governance gate runner (shipped
rules/). One sender posts baseline and canary inference records for every canaried
(model, site) and for some sites under no canary, at a steady rate. Each canary turns slow
(`--slow` times its latency) at a recorded wall-clock moment; an independent kafka-python
consumer reads the actions topic. Per rollback: (time it was read on the actions topic) -
(time the collector acknowledged the first regressed record of the window that failed),
split into the wait for that window to close (its end + grace, which dominates) and the
rest (Steward and Kafka after the window could close; it includes up to one sender tick
until a record with event time past end + grace arrives and closes the window).

Baseline in the same run, on the same broker under the same ingest: one bare kafka-python
produce -> consume round trip to a topic shaped like the actions topic, the consumer
configured like the one reading actions.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
from _report import Results, add_json_arg
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from collector.app import create_app as create_collector
from collector.publish import Publisher
from collector.settings import CollectorSettings
from processors.canary_latency import CanaryLatency, CanarySpec
from processors.governance_gate import GovernanceGate
from steward import topics as T
from steward.broker import EmbeddedBroker, free_port
from steward.bus.admin import ensure_topics, wait_ready
from steward.bus.metrics import StreamMetrics
from steward.bus.producer import Producer
from steward.bus.runner import Runner
from steward.governance.embedded import EmbeddedEngine
from steward.governance.gate import Gate
from steward.governance.masking import mask
from steward.settings import KafkaSettings

REPO = Path(__file__).resolve().parents[1]
ROLLED_BACK = "steward.model.rolled_back"
BASE, CANARY = "1.0.0", "1.1.0"


class Served:
    """An ASGI app under uvicorn on a free loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("collector did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def consumer(bootstrap: str) -> KafkaConsumer:
    """The independent reader: bare kafka-python, no group, library defaults otherwise."""
    return KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                         auto_offset_reset="earliest")


def bare_round_trips(bootstrap: str, n: int) -> list[float]:
    """Seconds from send to read of one message, n times, on a topic shaped like actions."""
    bare = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix="bare.")
    ensure_topics(bare, (T.ACTIONS,))
    topic = T.ACTIONS.full(bare.topic_prefix)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    reader = consumer(bootstrap)
    tp = TopicPartition(topic, 0)
    reader.assign([tp])
    reader.seek_to_end(tp)
    reader.position(tp)
    payload = json.dumps({"model": "m", "site": "s", "reason": "x" * 400}).encode()
    out = []
    for i in range(n):
        started = time.time()
        producer.send(topic, key=b"m", value=payload, partition=0,
                      headers=[("ce_type", ROLLED_BACK.encode())]).get(timeout=10)
        got = False
        while not got:
            for msgs in reader.poll(timeout_ms=1000).values():
                got = got or any(m.offset >= i for m in msgs)
        out.append(time.time() - started)
    producer.close()
    reader.close()
    return out


class Ingest:
    """One sender, one POST per tick: a baseline and a canary record per canaried key,
    two baseline records per key under no canary. Records turn slow after `inject_at`."""

    def __init__(self, url: str, keys: list[tuple[str, str]], noise: list[tuple[str, str]],
                 inject_at: list[float], rate: float, slow: float, seed: int) -> None:
        self.url, self.keys, self.noise, self.inject_at = url, keys, noise, inject_at
        self.per_tick = 2 * (len(keys) + len(noise))
        self.dt = self.per_tick / rate
        self.slow = slow
        self.rng = np.random.default_rng(seed)
        self.regressed: list[list[tuple[float, float]]] = [[] for _ in keys]
        """Per canaried key: (event time, collector ack time) of each regressed record."""
        self.sent = 0
        self.behind = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True, name="ingest")
        self.started = 0.0
        self.stopped = 0.0

    def start(self) -> Ingest:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=15)

    def _ms(self) -> float:
        return float(self.rng.lognormal(3.0, 0.1))

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            self.started = next_at = time.time()
            seq = 0
            while not self._stop.is_set():
                now = time.time()
                ts = datetime.fromtimestamp(now, UTC).isoformat()
                records, slow_keys = [], []
                for i, (model, site) in enumerate(self.keys):
                    slow = now >= self.inject_at[i]
                    if slow:
                        slow_keys.append(i)
                    for version, ms in ((BASE, self._ms()),
                                        (CANARY, self._ms() * (self.slow if slow else 1.0))):
                        records.append(self._record(seq, len(records), model, site, version,
                                                    ts, ms))
                for model, site in self.noise:
                    for _ in range(2):
                        records.append(self._record(seq, len(records), model, site, BASE, ts,
                                                    self._ms()))
                resp = client.post("/v1/inferences", json={"records": records})
                resp.raise_for_status()
                acked = time.time()
                for i in slow_keys:
                    self.regressed[i].append((now, acked))
                self.sent += len(records)
                seq += 1
                next_at += self.dt
                wait = next_at - time.time()
                if wait > 0:
                    self._stop.wait(wait)
                else:
                    self.behind += 1
            self.stopped = time.time()

    @staticmethod
    def _record(seq: int, n: int, model: str, site: str, version: str, ts: str,
                ms: float) -> dict[str, Any]:
        return {"id": f"r{seq}-{n}", "model": model, "version": version, "site": site,
                "tier": "edge", "ts": ts, "latency_ms": round(ms, 3),
                "features": {"amount": 10.0, "channel": "pos"}, "prediction": 0.3}


class Watcher:
    """Reads the actions topic; remembers each rollback with the time it was read."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.reader = consumer(bootstrap)
        self.reader.subscribe([topic])
        self.seen: list[tuple[float, dict[str, Any]]] = []
        self.other = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True, name="watcher")
        self.thread.start()

    def run(self) -> None:
        while not self._stop.is_set():
            for msgs in self.reader.poll(timeout_ms=100).values():
                read = time.time()
                for m in msgs:
                    headers = {k: v.decode() for k, v in (m.headers or [])}
                    if headers.get("ce_type") == ROLLED_BACK:
                        self.seen.append((read, json.loads(m.value)))
                    else:
                        self.other += 1
        self.reader.close()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=10)


def start_runner(stage: Any, kafka: KafkaSettings, stop: list[Any]) -> Runner:
    producer = Producer(kafka)
    runner = Runner(stage, kafka=kafka, group_id=f"{kafka.topic_prefix}{stage.name}",
                    producer=producer, metrics=StreamMetrics(CollectorRegistry()),
                    poll_timeout_ms=200, tick_interval_s=0.5)
    thread = threading.Thread(target=runner.run, daemon=True, name=runner.name)
    thread.start()
    stop.append(lambda: (runner.stop(), thread.join(timeout=15), producer.close()))
    return runner


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--canaries", type=int, default=20, help="(model, site) canaries")
    ap.add_argument("--noise-sites", type=int, default=10, help="sites under no canary")
    ap.add_argument("--rate", type=float, default=600, help="records/s in all")
    ap.add_argument("--window-s", type=int, default=2)
    ap.add_argument("--grace-s", type=float, default=0.5)
    ap.add_argument("--factor", type=float, default=1.5)
    ap.add_argument("--min-samples", type=int, default=8)
    ap.add_argument("--slow", type=float, default=3.0, help="canary latency after regression")
    ap.add_argument("--spacing", type=float, default=0.4, help="seconds between regressions")
    ap.add_argument("--settle", type=float, default=3.0, help="steady ingest before any")
    ap.add_argument("--bare", type=int, default=50, help="bare Kafka round trips")
    ap.add_argument("--seed", type=int, default=0)
    add_json_arg(ap)
    a = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    rng = np.random.default_rng(a.seed)
    keys = [(f"model-{i % 4}", f"site-{i:03d}") for i in range(a.canaries)]
    noise = [(f"model-{i % 4}", f"site-{a.canaries + i:03d}") for i in range(a.noise_sites)]
    specs = [CanarySpec(model=m, site=s, baseline_version=BASE, canary_version=CANARY,
                        factor=a.factor, window_s=a.window_s, grace_s=a.grace_s,
                        min_samples=a.min_samples) for m, s in keys]
    inject_at = [float("inf")] * a.canaries
    began = time.monotonic()
    stop: list[Any] = []
    with tempfile.TemporaryDirectory() as tmp, \
            EmbeddedBroker(free_port(), log_file=Path(tmp) / "broker.log") as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers,
                              topic_prefix="bench.", max_poll_interval_ms=10000)
        wait_ready(kafka)
        ensure_topics(kafka)
        try:
            settings = CollectorSettings(kafka=kafka)
            producer = Producer(kafka, retry_after_s=settings.retry_after_s)
            stop.append(producer.close)
            publisher = Publisher(producer, kafka.topic_prefix, settings.max_records_per_message,
                                  max_message_bytes=settings.kafka.max_message_bytes)
            server = Served(create_collector(settings, publisher, CollectorRegistry(),
                                             ready=lambda: True))
            stop.append(server.stop)
            runners = [start_runner(CanaryLatency(specs), kafka, stop),
                       start_runner(GovernanceGate(Gate(EmbeddedEngine(REPO / "rules"), mask)),
                                    kafka, stop)]
            watcher = Watcher(broker.bootstrap_servers, T.ACTIONS.full(kafka.topic_prefix))
            stop.append(watcher.stop)
            deadline = time.monotonic() + 60
            while not all(r.ready.is_set() and r.assigned for r in runners):
                if time.monotonic() > deadline:
                    raise RuntimeError("runners did not join their groups")
                time.sleep(0.1)
            ingest = Ingest(server.url, keys, noise, inject_at, a.rate, a.slow, a.seed).start()
            stop.append(ingest.stop)
            bare = bare_round_trips(broker.bootstrap_servers, a.bare)  # under the same ingest
            first = time.time() + a.settle
            for i in rng.permutation(a.canaries):
                inject_at[i] = first + float(i) * a.spacing + float(rng.uniform(0, a.spacing))
            deadline = time.monotonic() + (max(inject_at) - time.time()) + 3 * (
                a.window_s + a.grace_s) + 20
            while len(watcher.seen) < a.canaries and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)  # anything more (a second rollback would be a bug)
        finally:
            for item in reversed(stop):
                item()
    elapsed = time.monotonic() - began

    index = {k: i for i, k in enumerate(keys)}
    total, waits, rests, false_pos, next_window = [], [], [], 0, 0
    for read, data in watcher.seen:
        i = index[(data["model"], data["site"])]
        start = datetime.fromisoformat(data["window"]["start"]).timestamp()
        end = datetime.fromisoformat(data["window"]["end"]).timestamp()
        in_window = [ack for ts, ack in ingest.regressed[i] if start <= ts < end]
        if not in_window:
            false_pos += 1  # the window failed before the regression: not a measurement
            continue
        crossed = min(in_window)
        next_window += inject_at[i] < start
        total.append(read - crossed)
        waits.append(end + a.grace_s - crossed)
        rests.append(read - (end + a.grace_s))
    rate = ingest.sent / max(ingest.stopped - ingest.started, 1e-9)
    ms = 1000.0

    print(f"\n{len(total)} of {a.canaries} canaries rolled back and measured "
          f"({false_pos} before their regression, {a.canaries - len(watcher.seen)} missed, "
          f"{next_window} caught only in the window after the regression's; "
          f"{watcher.other} other events on actions); {a.canaries + a.noise_sites} sites, "
          f"one POST every {ingest.dt * 1000:.0f} ms, behind schedule on {ingest.behind} ticks; "
          f"run took {elapsed:.0f} s")
    print("\n| repetitions | window / grace | ingest rate | p50 | p99 | max | "
          "bare Kafka round trip p50 / p99 |\n|---:|---|---:|---:|---:|---:|---:|")
    print(f"| {len(total)} | {a.window_s} s / {a.grace_s} s | {rate:,.0f} records/s | "
          f"{pct(total, 50) * ms:,.0f} ms | {pct(total, 99) * ms:,.0f} ms | "
          f"{max(total, default=float('nan')) * ms:,.0f} ms | "
          f"{pct(bare, 50) * ms:,.1f} / {pct(bare, 99) * ms:,.1f} ms |")
    print("\n| part of the latency | p50 | p99 | max |\n|---|---:|---:|---:|")
    for name, xs in (("first regressed record acked -> read on actions (all)", total),
                     ("  waiting for the window to close (its end + grace)", waits),
                     ("  the rest: after the window could close", rests),
                     (f"bare kafka-python produce -> consume ({len(bare)}x, baseline)", bare)):
        print(f"| {name} | {pct(xs, 50) * ms:,.1f} ms | {pct(xs, 99) * ms:,.1f} ms | "
              f"{max(xs, default=float('nan')) * ms:,.1f} ms |")

    out = Results("rollback_latency")
    base = "bare kafka-python produce -> consume round trip"
    note = f"{len(total)}/{a.canaries} canaries, {rate:,.0f} records/s, window {a.window_s} s"
    out.add("telemetry crossing the line -> rollback on actions, p50", pct(total, 50) * ms, "ms",
            base + " p50", pct(bare, 50) * ms, note=note)
    out.add("telemetry crossing the line -> rollback on actions, p99", pct(total, 99) * ms, "ms",
            base + " p99", pct(bare, 99) * ms, target="< 1000", note=note)
    out.add("  of which Steward after the window could close, p99", pct(rests, 99) * ms, "ms",
            base + " p99", pct(bare, 99) * ms)
    out.write(a.json)


if __name__ == "__main__":
    main()
