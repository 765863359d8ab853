"""The examples in docs/ingest.md, run as written against a real collector and broker.

Each titled fenced block in the doc is run for real (bash with curl, python with this
interpreter) after its collector address `http://127.0.0.1:4318` is replaced by a
test collector's. The test then reads the telemetry topic with an independent Kafka
client and checks that exactly the records the example sent arrived. A titled block
without a check here fails `test_every_titled_example_is_tested`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from steward import topics as T

DOC = Path(__file__).resolve().parents[2] / "docs" / "ingest.md"
DOC_URL = "http://127.0.0.1:4318"
FENCE = re.compile(r"^```([A-Za-z0-9_+-]*)([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)
TITLE = re.compile(r"\btitle=([A-Za-z0-9_.-]+)")
RUNNABLE = frozenset({"bash", "sh", "shell", "python", "py"})

pytestmark = pytest.mark.integration


def doc_blocks() -> list[tuple[str, str | None, str]]:
    """(language, title or None, text) of every fenced block in the doc."""
    out = []
    for lang, info, text in FENCE.findall(DOC.read_text()):
        title = TITLE.search(info)
        out.append((lang.lower(), title.group(1) if title else None, text))
    return out


def example(title: str) -> tuple[str, str]:
    """The (language, text) of the block titled `title`; fails when there is not exactly one."""
    found = [(lang, text) for lang, t, text in doc_blocks() if t == title]
    assert len(found) == 1, f"{DOC.name} has {len(found)} blocks titled {title!r}"
    return found[0]


def run_example(title: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the example against `url` as a user would; assert it exits 0."""
    lang, text = example(title)
    assert DOC_URL in text, f"example {title!r} does not address {DOC_URL}"
    text = text.replace(DOC_URL, url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    if lang == "bash":
        if shutil.which("curl") is None:
            pytest.skip("curl is not installed: the bash examples of docs/ingest.md need it")
        cmd = ["bash", "-euo", "pipefail", "-c", text]
    elif lang == "python":
        cmd = [sys.executable, "-c", text]
    else:
        pytest.fail(f"example {title!r}: no runner for language {lang!r}")
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (f"example {title!r} exited {done.returncode}\n"
                                  f"stdout: {done.stdout}\nstderr: {done.stderr}")
    return done


def records_on(topic: str, reader: Callable[[str], list[dict[str, Any]]], wait: Any,
               expected: int) -> list[tuple[str, dict[str, Any]]]:
    """(Kafka key, record) for every record on `topic`, once at least `expected` are there."""
    def read() -> list[tuple[str, dict[str, Any]]] | None:
        out = []
        for msg in reader(topic):
            doc = json.loads(msg["value"])
            out += [(msg["key"], rec) for rec in doc["records"]]
        return out if len(out) >= expected else None
    return wait(read, timeout_s=20, what=f"{expected} records on {topic}")


def accepted(stdout: str, n: int) -> None:
    """The /v1/inferences answer for a batch of `n` valid records."""
    answer = json.loads(stdout)
    assert answer == {"accepted": n, "rejected": 0, "errors": []}, answer


def check_curl_inferences(done: subprocess.CompletedProcess[str], records: Any) -> None:
    accepted(done.stdout, 3)
    got = records(T.INFERENCE, 3)
    assert len(got) == 3
    assert {key for key, _ in got} == {"fraud-detector/store-042"}
    by_id = {r["id"]: r for _, r in got}
    assert set(by_id) == {"fd-edge-box-7-000001", "fd-edge-box-7-000002",
                          "fd-edge-box-7-000003"}
    for r in by_id.values():
        assert r["schema"] == "steward.inference.v1"
        assert (r["model"], r["version"], r["site"], r["tier"], r["node"]) == \
            ("fraud-detector", "1.5.0", "store-042", "edge", "edge-box-7")
    first, second, third = (by_id[f"fd-edge-box-7-00000{i}"] for i in (1, 2, 3))
    assert first["latency_ms"] == 38.2
    assert first["features"] == {"amount": 129.9, "country": "DE", "card_present": True}
    assert (first["prediction"], first["label"], first["error"], first["sample_rate"]) == \
        (0.07, None, False, 1.0)
    assert first["ts"].startswith("2026-01-01T00:00:00.125")
    assert (second["latency_ms"], second["prediction"], second["label"]) == (41.0, 0.91, 1)
    assert (third["latency_ms"], third["error"], third["sample_rate"]) == (250.0, True, 0.1)
    assert third["features"] == {}


def check_curl_gzip(done: subprocess.CompletedProcess[str], records: Any) -> None:
    accepted(done.stdout, 2)
    got = records(T.INFERENCE, 2)
    assert len(got) == 2
    assert {key for key, _ in got} == {"churn-model/eu-west-1"}
    by_pred = {r["prediction"]: r for _, r in got}
    assert set(by_pred) == {"stay", "leave"}
    for r in by_pred.values():
        assert (r["model"], r["version"], r["site"], r["tier"], r["node"]) == \
            ("churn-model", "3.2.1", "eu-west-1", "cloud", None)
    assert by_pred["stay"]["id"] == "churn-batch-20260101-0001"
    assert by_pred["stay"]["features"] == {"tenure_months": 14, "plan": "pro"}
    derived = by_pred["leave"]["id"]  # no id sent: derived from the content
    assert re.fullmatch(r"inf-[0-9a-f]{32}", derived), derived
    assert by_pred["leave"]["latency_ms"] == 14.0


def check_curl_otlp_json(done: subprocess.CompletedProcess[str], records: Any) -> None:
    assert json.loads(done.stdout) == {}, done.stdout  # full success: no partialSuccess
    got = records(T.METRICS, 2)
    assert len(got) == 2
    assert {key for key, _ in got} == {"fraud-detector/store-042"}
    by_version = {r["version"]: r for _, r in got}
    assert set(by_version) == {"1.5.0", "1.6.0-rc1"}
    for r in by_version.values():
        assert r["schema"] == "steward.metric.v1"
        assert (r["name"], r["kind"], r["unit"], r["temporality"]) == \
            ("steward.inference.latency", "histogram", "ms", "delta")
        assert (r["model"], r["site"], r["tier"], r["node"], r["service"]) == \
            ("fraud-detector", "store-042", "edge", "edge-box-7", "fraud-detector")
        assert r["ts"].startswith("2026-01-01T00:01:00")
        assert r["start_ts"].startswith("2026-01-01T00:00:00")
        assert r["attributes"] == {}  # steward.model.version went into the identity
        assert r["histogram"]["bounds"] == [5, 10, 25, 50, 100, 250]
    main, canary = by_version["1.5.0"]["histogram"], by_version["1.6.0-rc1"]["histogram"]
    assert (main["counts"], main["count"], main["sum"], main["min"], main["max"]) == \
        ([0, 3, 8, 4, 1, 0, 0], 16, 512.5, 6.1, 180.0)
    assert (canary["counts"], canary["count"], canary["sum"], canary["min"]) == \
        ([0, 0, 1, 2, 1, 0, 0], 4, 310.0, None)


def check_otel_sdk(done: subprocess.CompletedProcess[str], records: Any) -> None:
    got = records(T.METRICS, 1)
    assert len(got) == 1, got
    key, r = got[0]
    assert key == "fraud-detector/eu-west-1"
    assert (r["name"], r["kind"], r["unit"], r["temporality"]) == \
        ("steward.inference.latency", "histogram", "ms", "delta")
    assert (r["model"], r["version"], r["site"], r["tier"], r["service"]) == \
        ("fraud-detector", "1.4.0", "eu-west-1", "cloud", "fraud-detector")
    h = r["histogram"]
    assert h["bounds"] == [5, 10, 25, 50, 100, 250, 500, 1000]
    assert h["counts"] == [0, 1, 3, 1, 0, 0, 0, 0, 0]
    assert h["count"] == 5
    assert h["sum"] == pytest.approx(90.4)
    assert (h["min"], h["max"]) == (9.8, 31.0)


def check_curl_otlp_traces(done: subprocess.CompletedProcess[str], records: Any) -> None:
    assert json.loads(done.stdout) == {}, done.stdout  # the child span is ignored, not rejected
    got = records(T.INFERENCE, 2)
    assert len(got) == 2
    assert {key for key, _ in got} == {"fraud-detector/store-042"}
    by_id = {r["id"]: r for _, r in got}
    span_id = "span-5b8efff798038103d269b633813fc60ceee19b7ec3c1b174"
    assert set(by_id) == {span_id, "fd-edge-box-7-000003"}
    identity = {"schema": "steward.inference.v1", "model": "fraud-detector",
                "version": "1.5.0", "site": "store-042", "tier": "edge", "node": "edge-box-7",
                "hardware": None, "spillover_from": None, "agent_backlog": None}
    assert by_id[span_id] == {
        **identity, "id": span_id, "ts": "2026-01-01T00:00:00.038200Z", "latency_ms": 38.2,
        "features": {"amount": 129.9, "country": "DE", "card_present": True},
        "prediction": 0.07, "label": None, "error": False, "sample_rate": 1.0,
        "profiled": False}
    assert by_id["fd-edge-box-7-000003"] == {
        **identity, "id": "fd-edge-box-7-000003", "ts": "2026-01-01T00:00:01.250000Z",
        "latency_ms": 250.0, "features": {"amount": 15.0}, "prediction": None,
        "label": None, "error": True, "sample_rate": 0.1, "profiled": False}


def check_otel_sdk_traces(done: subprocess.CompletedProcess[str], records: Any) -> None:
    got = records(T.INFERENCE, 2)
    assert len(got) == 2, got
    assert {key for key, _ in got} == {"churn-model/eu-west-1"}
    by_pred = {r["prediction"]: r for _, r in got}
    assert set(by_pred) == {"stay", "leave"}
    assert by_pred["stay"]["features"] == {"tenure_months": 14, "plan": "pro"}
    assert by_pred["leave"]["features"] == {"tenure_months": 2, "plan": "free"}
    for r in by_pred.values():
        assert (r["model"], r["version"], r["site"], r["tier"], r["node"]) == \
            ("churn-model", "3.2.1", "eu-west-1", "cloud", None)
        assert re.fullmatch(r"span-[0-9a-f]{48}", r["id"]), r["id"]  # trace id + span id
        assert (r["error"], r["sample_rate"], r["label"]) == (False, 1.0, None)
        assert 0 <= r["latency_ms"] < 1000
    assert by_pred["stay"]["id"] != by_pred["leave"]["id"]


CHECKS: dict[str, Callable[[subprocess.CompletedProcess[str], Any], None]] = {
    "ingest-curl-inferences": check_curl_inferences,
    "ingest-curl-gzip": check_curl_gzip,
    "ingest-curl-otlp-json": check_curl_otlp_json,
    "ingest-otel-sdk": check_otel_sdk,
    "ingest-curl-otlp-traces": check_curl_otlp_traces,
    "ingest-otel-sdk-traces": check_otel_sdk_traces,
}


def test_every_titled_example_is_tested():
    blocks = doc_blocks()
    titles = [t for _, t, _ in blocks if t]
    assert len(titles) == len(set(titles)), f"duplicate titles in {DOC.name}: {titles}"
    assert set(titles) == set(CHECKS), (
        f"titled examples in {DOC.name} without a check here: {set(titles) - set(CHECKS)}; "
        f"checks here without an example: {set(CHECKS) - set(titles)}")
    untitled = [text.splitlines()[0] for lang, t, text in blocks if lang in RUNNABLE and not t]
    assert not untitled, f"runnable blocks in {DOC.name} without a title (so untested): {untitled}"


@pytest.mark.parametrize("title", sorted(CHECKS))
def test_doc_example_runs_and_its_records_arrive(title, kafka, start_collector, topic_reader,
                                                 wait, tmp_path):
    collector = start_collector()
    done = run_example(title, collector.url, tmp_path)

    def records(topic: T.Topic, expected: int) -> list[tuple[str, dict[str, Any]]]:
        return records_on(topic.full(kafka.topic_prefix), topic_reader, wait, expected)

    CHECKS[title](done, records)
    # The example must not have been partly refused: nothing was dead-lettered.
    assert topic_reader(T.DEADLETTER.full(kafka.topic_prefix)) == []
