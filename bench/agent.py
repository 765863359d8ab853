"""Edge agent throughput: how fast the spool takes data, and how fast it drains.

    .venv/bin/python bench/agent.py [--seconds 5] [--batch 100] [--points 100]
                                    [--clients 2] [--forward-entries 300]
                                    [--max-batch-records 5000] [--dir DIR]

Spool write: records/s and entries/s through a real agent process's local HTTP intake
(JSON inference batches of `--batch` records, OTLP protobuf metric exports of
`--points` data points), each beside bare SQLite inserts of the same stored bodies
with the spool's durability (WAL, synchronous=FULL, one transaction per entry) on
the same disk, in the same run. The agent forwards to a closed port meanwhile, so
nothing drains.

Forward: records/s the agent's forwarder drains from a spool pre-filled with
`--forward-entries` entries per signal to the real collector (and so to Kafka),
beside posting the same batches straight to the collector, one after another.

Starts its own embedded broker, a real collector process and a real agent process;
prints a markdown table. The spool files go under `--dir` (default: the system temp
dir), which must be a real disk for the write figures to mean anything.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from _report import Results, add_json_arg
from ingest import drive, inference_batch, otlp_body
from prometheus_client import CollectorRegistry

from collector.agent.batch import encode_records
from collector.agent.intake import Intake
from collector.agent.main import Agent
from collector.agent.settings import AgentSettings
from collector.agent.signals import SIGNALS
from steward.broker import EmbeddedBroker, free_port
from steward.bus.admin import ensure_topics, wait_ready
from steward.schema import InferenceRecord
from steward.settings import KafkaSettings

JSON, PROTOBUF = "application/json", "application/x-protobuf"
Row = tuple[str, float, float]
"""(label, records/s, entries/s)."""


def json_body(n: int) -> Callable[[int], bytes]:
    return lambda seq: json.dumps({"records": inference_batch(n, seq)}).encode()


def cycle(make: Callable[[int], bytes], n: int = 64) -> Callable[[int], bytes]:
    """`make` for the first `n` sequence numbers, made beforehand: the senders share the
    agent's cores, so they only pick a body."""
    bodies = [make(seq) for seq in range(n)]
    return lambda seq: bodies[seq % n]


def stored_json(body: bytes) -> bytes:
    """An inference batch as the intake stores it: validated, defaults filled in."""
    return encode_records([InferenceRecord.model_validate(r).model_dump(mode="json",
                                                                         by_alias=True)
                           for r in json.loads(body)["records"]])


def bare_sqlite(path: Path, body: bytes, seconds: float) -> float:
    """Entries/s of plain SQLite inserts of `body`, with the spool's durability."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE entries (id INTEGER PRIMARY KEY AUTOINCREMENT, signal TEXT, "
               "content_type TEXT, records INTEGER, bytes INTEGER, created_at REAL, body BLOB)")
    n, started = 0, time.monotonic()
    deadline = started + seconds
    while time.monotonic() < deadline:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO entries VALUES (NULL, 'bench', 'x', 100, ?, ?, ?)",
                   (len(body), time.time(), body))
        db.execute("COMMIT")
        n += 1
    rate = n / (time.monotonic() - started)
    db.close()
    return rate


def wait_http(url: str, proc: subprocess.Popen, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    sys.exit(f"the {what} did not start\n{tail}")


def spool_write(args: argparse.Namespace, work: Path) -> list[Row]:
    """The intake of a real agent process, then bare SQLite, for each kind of entry."""
    port, log = free_port(), work / "agent.log"
    env = dict(os.environ, STEWARD_LOG_LEVEL="WARNING")
    agent = subprocess.Popen([sys.executable, "-m", "steward.cli", "agent", "--collector-url",
                              f"http://127.0.0.1:{free_port()}", "--port", str(port),
                              "--spool-dir", str(work / "intake")],
                             stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url, agent, "agent", log)
        inf = drive(url, "/v1/inferences", cycle(json_body(args.batch)), JSON, args.clients,
                    args.seconds, args.batch)
        otlp = drive(url, "/v1/metrics", cycle(otlp_body(args.points)), PROTOBUF, args.clients,
                     args.seconds, args.points)
    finally:
        agent.terminate()
        agent.wait(30)
    bare_inf = bare_sqlite(work / "bare-json.sqlite3", stored_json(json_body(args.batch)(0)),
                           args.seconds)
    bare_otlp = bare_sqlite(work / "bare-otlp.sqlite3", otlp_body(args.points)(0), args.seconds)
    return [
        ("bare SQLite insert, JSON batch body (baseline)", bare_inf * args.batch, bare_inf),
        ("agent intake, JSON inference batches", inf, inf / args.batch),
        ("bare SQLite insert, OTLP export body (baseline)", bare_otlp * args.points, bare_otlp),
        ("agent intake, OTLP protobuf metric exports", otlp, otlp / args.points),
    ]


def drain(collector_url: str, spool_dir: Path, signal: str, bodies: list[bytes],
          max_batch_records: int, timeout_s: float = 120.0) -> float:
    """Records/s the real forwarder drains from a spool holding `bodies` (stored by the
    real intake code, without HTTP) to the collector."""
    settings = AgentSettings(collector_url=collector_url, port=free_port(), spool_dir=spool_dir,
                             max_batch_records=max_batch_records)
    registry = CollectorRegistry()
    agent = Agent(settings, registry)
    intake = Intake(agent.spool, agent.metrics, settings.max_body_bytes)
    for body in bodies:
        if signal == "inferences":
            intake.inferences(body)
        else:
            intake.otlp(SIGNALS[signal], body, PROTOBUF)
    records = agent.spool.totals().records
    started = time.monotonic()
    agent.start()
    while agent.spool.totals().entries:
        if time.monotonic() - started > timeout_s:
            agent.close()
            attempts = [f"{s.labels['outcome']} {s.labels['code']}: {s.value:.0f}"
                        for m in registry.collect() if m.name == "steward_agent_forward_attempts"
                        for s in m.samples if s.name.endswith("_total")]
            sys.exit(f"the {signal} spool did not drain in {timeout_s:.0f}s; "
                     f"forward attempts: {', '.join(attempts)}")
        time.sleep(0.005)
    elapsed = time.monotonic() - started
    agent.close()
    forwarded = registry.get_sample_value("steward_agent_forwarded_records_total",
                                          {"signal": signal})
    if forwarded != records:
        sys.exit(f"the agent forwarded {forwarded} of {records} {signal} records")
    return records / elapsed


def post_all(url: str, path: str, content_type: str, bodies: list[bytes],
             per_request: int) -> float:
    """Records/s of posting `bodies` straight to the collector, one after another."""
    with httpx.Client(base_url=url, timeout=30) as client:
        started = time.monotonic()
        for body in bodies:
            client.post(path, content=body, headers={"content-type": content_type}
                        ).raise_for_status()
        return len(bodies) * per_request / (time.monotonic() - started)


def forward(args: argparse.Namespace, work: Path, url: str) -> list[Row]:
    n = args.forward_entries
    inf_bodies = [json_body(args.batch)(10_000_000 + s) for s in range(n)]
    otlp_bodies = [otlp_body(args.points)(s) for s in range(n)]
    direct_inf = post_all(url, "/v1/inferences", JSON, inf_bodies, args.batch)
    drained_inf = drain(url, work / "forward-inferences", "inferences", inf_bodies,
                        args.max_batch_records)
    direct_otlp = post_all(url, "/v1/metrics", PROTOBUF, otlp_bodies, args.points)
    drained_otlp = drain(url, work / "forward-metrics", "metrics", otlp_bodies,
                         args.max_batch_records)
    return [
        ("direct POST to the collector, JSON batches (baseline)", direct_inf,
         direct_inf / args.batch),
        ("agent forwarder → collector → Kafka, JSON batches", drained_inf,
         drained_inf / args.batch),
        ("direct POST to the collector, OTLP exports (baseline)", direct_otlp,
         direct_otlp / args.points),
        ("agent forwarder → collector → Kafka, OTLP exports", drained_otlp,
         drained_otlp / args.points),
    ]


def filesystem(path: Path) -> str:
    """The type of the filesystem holding `path` (from /proc/mounts), or '?'."""
    best, kind = "", "?"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    real = str(path.resolve())
    for line in mounts:
        _, point, fs, *_ = line.split()
        if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
            best, kind = point, fs
    return kind


def table(title: str, rows: list[Row]) -> None:
    print(f"\n| {title} | records/s | entries/s | vs baseline |\n|---|---:|---:|---:|")
    for i in range(0, len(rows), 2):
        base = rows[i][1]
        for label, records, entries in rows[i:i + 2]:
            print(f"| {label} | {records:,.0f} | {entries:,.1f} | {records / base:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0,
                    help="length of each spool-write measurement")
    ap.add_argument("--batch", type=int, default=100, help="records per JSON inference batch")
    ap.add_argument("--points", type=int, default=100, help="data points per OTLP export")
    ap.add_argument("--clients", type=int, default=2, help="concurrent local senders")
    ap.add_argument("--forward-entries", type=int, default=300,
                    help="entries pre-filled per signal for the forward measurement")
    ap.add_argument("--max-batch-records", type=int, default=5000,
                    help="the forwarding agent's max_batch_records (its default)")
    ap.add_argument("--dir", type=Path, default=None,
                    help="where the spool files go (default: the system temp dir)")
    add_json_arg(ap)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="steward-agent-bench-", dir=args.dir))
    try:
        with EmbeddedBroker(free_port()) as broker:
            kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers,
                                  topic_prefix="bench.")
            wait_ready(kafka)
            ensure_topics(kafka)
            port = free_port()
            env = dict(os.environ, STEWARD_KAFKA__BOOTSTRAP_SERVERS=kafka.bootstrap_servers,
                       STEWARD_KAFKA__TOPIC_PREFIX="bench.", STEWARD_LOG_LEVEL="WARNING")
            collector = subprocess.Popen([sys.executable, "-m", "steward.cli", "collector",
                                          "--port", str(port)], env=env)
            url = f"http://127.0.0.1:{port}"
            try:
                wait_http(url, collector, "collector")
                written = spool_write(args, work)
                forwarded = forward(args, work, url)
            finally:
                collector.terminate()
                collector.wait()
        table(f"spool write, {args.clients} clients, {args.batch} records or {args.points} "
              f"points per entry, {work.parent} ({filesystem(work)})", written)
        table(f"forward, {args.forward_entries} entries per signal, 1 sender, at most "
              f"{args.max_batch_records} records per agent request", forwarded)
        out = Results("agent")
        for rows in (written, forwarded):
            for i in range(0, len(rows), 2):
                (base, base_rate, _), (label, rate, _) = rows[i], rows[i + 1]
                out.add(f"edge {label}", rate, "records/s",
                        base.replace(" (baseline)", ""), base_rate)
        out.write(args.json)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
