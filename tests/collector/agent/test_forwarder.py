"""The forwarder against a stand-in collector on loopback, one step at a time."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from pydantic import SecretStr

from collector.agent.batch import encode_records
from collector.otlp import JSON, PROTOBUF
from tests.support import Seen, ok

from .conftest import record

TOKEN = "s3cret-token-value"


def spool_inferences(parts, batches: list[list[str]]) -> None:
    for ids in batches:
        parts.spool.append("inferences", JSON, encode_records([record(i) for i in ids]), len(ids))


def gauge_metrics(n: int, service: str = "fraud-detector") -> bytes:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.add(key="service.name").value.string_value = service
    metric = rm.scope_metrics.add().metrics.add(name="steward.inference.latency", unit="ms")
    for i in range(n):
        metric.gauge.data_points.add(time_unix_nano=1767225600000000000 + i, as_double=i)
    return req.SerializeToString()


def test_entries_merge_into_one_gzip_request_with_the_token_and_go_after_a_200(
        parts, upstream):
    up = upstream()
    p = parts(up.url, token=SecretStr(TOKEN))
    spool_inferences(p, [["a1", "a2"], ["b1"], ["c1", "c2", "c3"]])
    p.spool.append("metrics", PROTOBUF, gauge_metrics(2), 2)
    p.spool.append("metrics", PROTOBUF, gauge_metrics(3, "other"), 3)

    p.drain()

    inf, met = up.seen
    assert inf.path == "/v1/inferences" and inf.ids() == ["a1", "a2", "b1", "c1", "c2", "c3"]
    assert inf.headers["content-encoding"] == "gzip"
    assert inf.headers["authorization"] == f"Bearer {TOKEN}"
    assert inf.headers["content-type"] == JSON
    assert met.path == "/v1/metrics" and met.headers["content-type"] == PROTOBUF
    merged = ExportMetricsServiceRequest.FromString(met.body)
    assert [len(rm.scope_metrics[0].metrics[0].gauge.data_points)
            for rm in merged.resource_metrics] == [2, 3]
    assert p.spool.totals().entries == 0
    assert p.value("steward_agent_forwarded_records_total", signal="inferences") == 6
    assert p.value("steward_agent_forwarded_entries_total", signal="metrics") == 2
    assert p.value("steward_agent_forward_attempts_total", outcome="delivered", code="200") == 2
    assert p.value("steward_agent_link_up") == 1


def test_no_token_no_authorization_header(parts, upstream):
    up = upstream()
    p = parts(up.url)
    spool_inferences(p, [["a"]])
    p.drain()
    assert "authorization" not in up.seen[0].headers


def test_a_400_on_a_merged_batch_isolates_the_bad_entry_in_the_dead_table(parts, upstream):
    def answer(seen: Seen):
        if any(i.startswith("poison") for i in seen.ids()):
            return 400, {"Content-Type": "application/json"}, b'{"detail": "poisoned"}'
        return ok(seen)
    up = upstream(answer)
    p = parts(up.url)
    spool_inferences(p, [["a1", "a2"], ["poison-1", "poison-2"], ["c1"]])

    p.drain()

    assert [s.ids() for s in up.seen] == [
        ["a1", "a2", "poison-1", "poison-2", "c1"],  # merged: 400
        ["a1", "a2"], ["poison-1", "poison-2"], ["c1"],  # one by one
    ]
    [dead] = p.spool.dead_entries()
    assert (dead.id, dead.records, dead.reason) == (2, 2, "HTTP 400: poisoned")
    assert p.spool.totals().entries == 0
    assert p.value("steward_agent_dead_records_total", signal="inferences") == 2
    assert p.value("steward_agent_forwarded_records_total", signal="inferences") == 3


def test_a_413_halves_the_batch_until_it_fits(parts, upstream):
    def answer(seen: Seen):
        return (413, {}, b"too big") if len(seen.ids()) > 2 else ok(seen)
    up = upstream(answer)
    p = parts(up.url)
    spool_inferences(p, [[f"r{i}"] for i in range(8)])

    p.drain()

    assert [len(s.ids()) for s in up.seen] == [8, 4, 2, 2, 2, 2]
    assert sorted(i for s in up.seen[2:] for i in s.ids()) == [f"r{i}" for i in range(8)]
    assert p.spool.dead_entries() == [] and p.spool.totals().entries == 0


def test_a_refused_token_keeps_everything_and_pauses_the_link(parts, upstream, caplog):
    refuse = {"on": True}

    def answer(seen: Seen):
        if refuse["on"]:
            return 401, {"Content-Type": "application/json"}, b'{"detail": "bad token"}'
        return ok(seen)
    up = upstream(answer)
    p = parts(up.url, token=SecretStr(TOKEN), backoff_cap_s=0.3)
    spool_inferences(p, [["a"], ["b"]])
    p.spool.append("metrics", PROTOBUF, gauge_metrics(1), 1)

    with caplog.at_level(logging.ERROR):
        assert p.forwarder.step() == 0.3
    assert 0.2 < p.forwarder.step() <= 0.3  # paused: no request for any signal
    assert len(up.seen) == 1
    assert "refused the agent's token" in caplog.text and "bad token" in caplog.text
    assert TOKEN not in caplog.text
    assert p.spool.totals().entries == 3 and p.value("steward_agent_link_up") == 0
    assert p.value("steward_agent_forward_attempts_total", outcome="refused", code="401") == 1

    refuse["on"] = False
    p.drain()
    assert [s.path for s in up.seen] == ["/v1/inferences"] * 2 + ["/v1/metrics"]
    assert up.seen[1].ids() == ["a", "b"] and p.spool.totals().entries == 0


def test_a_403_holds_back_only_the_entry_it_concerns(parts, upstream, caplog):
    def answer(seen: Seen):
        sites = {r["site"] for r in json.loads(seen.body)["records"]}
        if "store-999" in sites:
            return 403, {"Content-Type": "application/json"}, \
                b'{"detail": "token may not write site store-999"}'
        return ok(seen)
    clock = [0.0]
    up = upstream(answer)
    p = parts(up.url, monotonic=lambda: clock[0], backoff_cap_s=60)
    p.spool.append("inferences", JSON, encode_records([record("a")]), 1)
    p.spool.append("inferences", JSON, encode_records([record("x", site="store-999")]), 1)
    p.spool.append("inferences", JSON, encode_records([record("b")]), 1)

    def step() -> float:
        delay = p.forwarder.step()
        clock[0] += delay or 0.0
        return delay

    with caplog.at_level(logging.ERROR):
        assert step() == 0.0  # merged: 403, now one by one
        assert step() == 0.0  # a: delivered
        assert 0 < step() <= 0.01  # x: refused alone; a short pause
        assert step() == 0.0  # b: delivered
    assert [s.ids() for s in up.seen] == [["a", "x", "b"], ["a"], ["x"], ["b"]]
    assert 59 < p.forwarder.step() < 60.0  # only the refused entry is left: it waits
    assert [e.id for e in p.spool.read("inferences", 0, 9, 10 ** 6, 9)] == [2]
    assert "spool entry 2" in caplog.text and "store-999" in caplog.text

    spool_inferences(p, [["c"]])  # new data flows meanwhile
    assert p.forwarder.step() == 0.0 and up.seen[-1].ids() == ["c"]
    clock[0] += 60.0  # then the refused entry is tried again, alone
    assert p.forwarder.step() > 0 and up.seen[-1].ids() == ["x"]
    assert p.spool.totals().entries == 1 and p.spool.dead_entries() == []


def test_retry_after_pauses_the_link_without_requests(parts, upstream):
    def answer(seen: Seen):
        return 503, {"Retry-After": "2"}, b'{"detail": "kafka down"}'
    up = upstream(answer)
    p = parts(up.url, backoff_cap_s=0.05)
    spool_inferences(p, [["a"]])

    assert p.forwarder.step() == 2.0
    assert 1.9 < p.forwarder.step() <= 2.0  # still paused, no second request
    assert len(up.seen) == 1 and p.spool.totals().entries == 1
    assert p.value("steward_agent_forward_attempts_total", outcome="retry", code="503") == 1


def test_no_collector_backs_off_with_jitter_within_the_cap(parts):
    from steward.broker import free_port
    clock = [0.0]
    p = parts(f"http://127.0.0.1:{free_port()}", monotonic=lambda: clock[0],
              backoff_base_s=0.01, backoff_cap_s=0.04)
    spool_inferences(p, [["a"]])
    delays = []
    for _ in range(8):
        delays.append(p.forwarder.step())
        assert p.forwarder.step() == pytest.approx(delays[-1])  # paused: no attempt yet
        clock[0] += delays[-1]
    assert all(0 <= d <= 0.04 for d in delays) and len(set(delays)) > 1
    assert p.value("steward_agent_forward_attempts_total", outcome="retry", code="none") == 8
    assert p.spool.totals().entries == 1 and p.value("steward_agent_link_up") == 0


def test_records_rejected_inside_a_200_are_delivered_and_counted(parts, upstream):
    def answer(seen: Seen):
        return 200, {"Content-Type": "application/json"}, json.dumps(
            {"accepted": 2, "rejected": 1, "errors": [{"index": 2, "reason": "x"}]}).encode()
    up = upstream(answer)
    p = parts(up.url)
    spool_inferences(p, [["a", "b", "c"]])
    p.drain()
    assert p.spool.totals().entries == 0
    assert p.value("steward_agent_rejected_records_total", signal="inferences") == 1
    assert p.value("steward_agent_forwarded_records_total", signal="inferences") == 3


def test_an_entry_that_cannot_be_merged_is_sent_alone_and_buried_on_400(parts, upstream):
    def answer(seen: Seen):
        try:
            seen.ids()
        except ValueError:
            return 400, {"Content-Type": "application/json"}, b'{"detail": "not JSON"}'
        return ok(seen)
    up = upstream(answer)
    p = parts(up.url)
    spool_inferences(p, [["a"]])
    p.spool.append("inferences", JSON, b"\x00 corrupted on disk", 1)
    spool_inferences(p, [["c"]])

    p.drain()

    assert [s.body[:2] for s in up.seen] == [b'{"', b"\x00 ", b'{"']
    assert [d.id for d in p.spool.dead_entries()] == [2]


def test_an_unreadable_entry_alone_is_buried_not_retried(parts, upstream):
    up = upstream()
    p = parts(up.url)
    p.spool.append("metrics", JSON, b"{broken", 1)  # OTLP JSON is parsed before sending
    assert p.forwarder.step() == 0.0
    assert p.forwarder.step() is None and up.seen == []
    [dead] = p.spool.dead_entries()
    assert dead.reason.startswith("unreadable spool entry: request body is not valid JSON")
