"""Ingest throughput: records/s through the collector into Kafka, beside bare kafka-python
producing the same bytes to the same broker in the same run.

    .venv/bin/python bench/ingest.py [--seconds 10] [--batch 500] [--clients 4]

Starts its own embedded broker and a real collector process; prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import httpx
from _report import Results, add_json_arg
from kafka import KafkaConsumer, KafkaProducer

from steward import topics as T
from steward.broker import EmbeddedBroker, free_port
from steward.bus.admin import ensure_topics, wait_ready
from steward.codec import encode_batch
from steward.demo import latency_request
from steward.schema import InferenceRecord
from steward.settings import KafkaSettings


def inference_batch(n: int, seq: int) -> list[dict]:
    now = datetime.now(UTC).isoformat()
    return [{"id": f"b{seq}-{i}", "model": "m", "version": "1", "site": f"site-{i % 8}",
             "tier": "edge", "ts": now, "latency_ms": 12.5 + i % 7,
             "features": {"amount": 10.0 + i, "channel": "pos"}, "prediction": 0.3}
            for i in range(n)]


def bare_produce(kafka: KafkaSettings, batch: int, seconds: float) -> tuple[float, float]:
    """Records/s of kafka-python alone, sending messages shaped like the collector's, to a
    topic of its own; then records/s reading them all back (one consumer, no group)."""
    records = [InferenceRecord.model_validate(r) for r in inference_batch(batch, 0)]
    by_site: dict[str, list] = {}
    for r in records:
        by_site.setdefault(r.site, []).append(r)
    values = [(f"m/{s}".encode(), encode_batch(rs)) for s, rs in by_site.items()]
    producer = KafkaProducer(bootstrap_servers=kafka.servers(), acks="all", linger_ms=5)
    topic = "bare." + T.INFERENCE.full(kafka.topic_prefix)
    sent, deadline = 0, time.monotonic() + seconds
    started = time.monotonic()
    while time.monotonic() < deadline:
        futures = [producer.send(topic, key=k, value=v) for k, v in values]
        producer.flush()
        for f in futures:
            f.get()
        sent += batch
    produced = sent / (time.monotonic() - started)
    producer.close()
    return produced, bare_consume(kafka, topic, sent // batch * len(values), batch / len(values))


def bare_consume(kafka: KafkaSettings, topic: str, messages: int, per_message: float) -> float:
    """Records/s of one kafka-python consumer reading `messages` back, values untouched."""
    consumer = KafkaConsumer(topic, bootstrap_servers=kafka.servers(), group_id=None,
                             auto_offset_reset="earliest", fetch_max_bytes=16 * 1024 * 1024,
                             max_partition_fetch_bytes=4 * 1024 * 1024)
    got, started = 0, time.monotonic()
    while got < messages and time.monotonic() - started < 120:
        for batch in consumer.poll(timeout_ms=500, max_records=5000).values():
            got += len(batch)
    rate = got * per_message / (time.monotonic() - started)
    consumer.close()
    return rate


def drive(url: str, path: str, make_body, content_type: str, clients: int,
          seconds: float, per_request: int) -> float:
    """Records/s the collector accepted (200) from `clients` concurrent senders."""
    counts = [0] * clients
    deadline = time.monotonic() + seconds

    def worker(k: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            seq = 0
            while time.monotonic() < deadline:
                resp = client.post(path, content=make_body(k * 1_000_000 + seq),
                                   headers={"content-type": content_type})
                resp.raise_for_status()
                counts[k] += per_request
                seq += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - started)


def otlp_body(points: int):
    def make(seq: int) -> bytes:
        now = time.time_ns() + seq
        req = latency_request("1", f"node-{seq % 16}", [10.0 + i % 50 for i in range(20)],
                              now - 1_000_000_000, now)
        metrics = req.resource_metrics[0].scope_metrics[0].metrics
        point = metrics[0].histogram.data_points[0]
        for i in range(points - 1):
            extra = metrics[0].histogram.data_points.add()
            extra.CopyFrom(point)
            extra.time_unix_nano = now + i + 1
        return req.SerializeToString()
    return make


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--clients", type=int, default=4)
    add_json_arg(ap)
    args = ap.parse_args()
    import json
    with EmbeddedBroker(free_port()) as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, topic_prefix="bench.")
        wait_ready(kafka)
        ensure_topics(kafka)
        port = free_port()
        env = dict(os.environ, STEWARD_KAFKA__BOOTSTRAP_SERVERS=kafka.bootstrap_servers,
                   STEWARD_KAFKA__TOPIC_PREFIX="bench.", STEWARD_LOG_LEVEL="WARNING")
        collector = subprocess.Popen([sys.executable, "-m", "steward.cli", "collector", "--port",
                                      str(port)], env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            while True:
                try:
                    if httpx.get(f"{url}/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            bare, bare_read = bare_produce(kafka, args.batch, args.seconds)
            inf = drive(url, "/v1/inferences",
                        lambda s: json.dumps({"records": inference_batch(args.batch, s)}).encode(),
                        "application/json", args.clients, args.seconds, args.batch)
            otlp = drive(url, "/v1/metrics", otlp_body(args.batch), "application/x-protobuf",
                         args.clients, args.seconds, args.batch)
        finally:
            collector.terminate()
            collector.wait()
    print(f"\n| path ({args.batch} records/request, {args.clients} clients) | records/s | "
          f"vs bare produce |\n|---|---:|---:|")
    print(f"| bare kafka-python produce, same bytes (baseline) | {bare:,.0f} | 1.00 |")
    print(f"| collector, JSON inference batches | {inf:,.0f} | {inf / bare:.2f} |")
    print(f"| collector, OTLP protobuf histogram points | {otlp:,.0f} | {otlp / bare:.2f} |")
    print(f"| bare kafka-python consume of those messages | {bare_read:,.0f} | "
          f"{bare_read / bare:.2f} |")
    out = Results("ingest")
    base = f"bare kafka-python produce, same bytes ({args.batch}/request)"
    out.add("collector: JSON inference batches accepted (acked by Kafka)", inf, "records/s",
            base, bare)
    out.add("collector: OTLP protobuf histogram points accepted", otlp, "points/s", base, bare)
    out.add("bare kafka-python consume of the same messages", bare_read, "records/s", base, bare)
    out.write(args.json)


if __name__ == "__main__":
    main()
