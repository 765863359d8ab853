"""`steward bench load`: drive a stack at a set rate for a set time and say what it did.

Against a running stack (its collector and API URLs, its Kafka for the actions topic) or
one it starts itself (`steward up`'s processes on an embedded broker, with canaries
configured for it). Reports accepted/s, stored/s, the time to drain what was accepted,
arrival -> stored latency (probe records: send -> seen by `GET /inferences`, polled
every 50 ms), telemetry crossing a rollback line -> rollback read on the actions topic,
and the RSS of every process over time.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from steward.broker import free_port
from steward.loadgen.observe import (
    ActionsWatch,
    Canaries,
    RssWatch,
    StoreWatch,
    canary_specs,
    find_pids,
)
from steward.loadgen.traffic import Senders, fleet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadOptions:
    rate: float = 5000.0
    """Telemetry records (JSON inference records + OTLP points) per second, in all."""
    seconds: float = 30.0
    edge_nodes: int = 40
    cloud_nodes: int = 10
    models: int = 20
    per_request: int = 1000
    workers: int = 4
    otlp_every: int = 5
    """Every n-th request is an OTLP protobuf metrics export (0: JSON only)."""
    canaries: int = 10
    window_s: int = 1
    grace_s: float = 0.25
    early: bool = False
    """Canaries judged on their open window as records arrive (stack started here)."""
    settle_s: float = 5.0
    drain_s: float = 60.0
    collector_url: str | None = None
    """None: start a stack for the run."""
    api_url: str | None = None
    bootstrap: str | None = None
    topic_prefix: str = ""
    token: str | None = None


@dataclass
class LoadResult:
    opts: LoadOptions
    duration_s: float
    accepted: int
    otlp_points: int
    rejected: int
    refused: dict[int, int]
    errors: int
    behind: int
    stored_during: float
    drained_after_s: float | None
    stored_total: float
    probe_latency_s: list[float]
    rollback: list[tuple[float, float, float]]
    """(total, window wait, rest) in seconds per measured rollback."""
    canaries_rolled_back: int
    rss: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    @property
    def accepted_per_s(self) -> float:
        return (self.accepted + self.otlp_points) / self.duration_s

    @property
    def stored_per_s(self) -> float:
        return self.stored_during / self.duration_s

    @property
    def end_to_end_per_s(self) -> float | None:
        """Inference records stored / (send time + time to drain), when all were stored."""
        if self.drained_after_s is None:
            return None
        return self.stored_total / (self.duration_s + self.drained_after_s)


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


def run_load(opts: LoadOptions) -> LoadResult:
    """One run; starts (and stops) a stack unless `opts.collector_url` is set."""
    stack = None
    tmp = None
    try:
        if opts.collector_url is None:
            tmp = tempfile.TemporaryDirectory(prefix="steward-load-")
            stack, opts = _start_stack(opts, Path(tmp.name))
            pids = {name: proc.pid for name, proc in stack.children}
            if stack.broker is not None and stack.broker._proc is not None:
                pids["broker"] = stack.broker._proc.pid
        else:
            pids = find_pids()
        return _drive(opts, pids)
    finally:
        if stack is not None:
            stack.stop()
        if tmp is not None:
            tmp.cleanup()


def canary_keys(opts: LoadOptions) -> list[tuple[str, str]]:
    return [(f"canary-{i:03d}", f"canary-site-{i:03d}") for i in range(opts.canaries)]


def _start_stack(opts: LoadOptions, data_dir: Path):
    from dataclasses import replace

    from steward.up import Stack, UpOptions

    up = UpOptions(data_dir=data_dir, otlp_port=free_port(), api_port=free_port(),
                   kafka_port=free_port(),
                   canaries=canary_specs(canary_keys(opts), opts.window_s, opts.grace_s,
                                         opts.early),
                   extra_env={"STEWARD_LOG_LEVEL": "WARNING"})
    stack = Stack(up)
    try:
        stack.start()
    except BaseException:
        stack.stop()
        raise
    return stack, replace(opts, collector_url=stack.collector_url, api_url=stack.api_url,
                          bootstrap=stack.bootstrap, topic_prefix="")


def _drive(opts: LoadOptions, pids: dict[str, int]) -> LoadResult:
    from steward.bus.tail import tail

    run = f"lg{int(time.time()) % 100000}"
    headers = {"authorization": f"Bearer {opts.token}"} if opts.token else {}
    keys = canary_keys(opts)
    canaries = Canaries(opts.collector_url, keys, f"{run}-probe", run, headers=headers) \
        if opts.canaries else None
    actions = None
    if canaries is not None and opts.bootstrap:
        actions = ActionsWatch(tail(opts.bootstrap, "actions", opts.topic_prefix,
                                    from_beginning=True), {m for m, _ in keys}).start()
    rss = RssWatch(pids).start()
    watch = StoreWatch(opts.api_url, canaries, headers=headers).start() if opts.api_url \
        else None
    if canaries is not None:
        canaries.start()
    nodes = fleet(opts.edge_nodes, opts.cloud_nodes, opts.models, run)
    senders = Senders(opts.collector_url, nodes, opts.rate, opts.per_request, opts.workers,
                      opts.otlp_every, run, opts.token)
    before = (watch.count() or 0.0) if watch else 0.0
    if canaries is not None:
        _schedule(canaries, opts)
    senders.start(opts.seconds)
    senders.join()
    duration = senders.stopped - senders.started
    stored_at_stop = (watch.count() or before) if watch else before
    if canaries is not None:
        canaries.stop()
    expected = senders.counts.accepted + (canaries.sent if canaries else 0)
    drained = _drain(watch, before, expected, opts.drain_s, senders.stopped)
    _wait_rollbacks(actions, len(keys), opts)
    rss.stop()
    final = (watch.count() or stored_at_stop) if watch else stored_at_stop
    if watch is not None:
        watch.stop()
    rollbacks = _rollbacks(actions, canaries, keys, opts.grace_s)
    c = senders.counts
    return LoadResult(opts, duration, c.accepted, c.otlp_points, c.rejected, dict(c.refused),
                      c.errors, c.behind, stored_at_stop - before, drained,
                      final - before,
                      watch.probe_latency if watch else [], rollbacks,
                      len(actions.rollbacks) if actions else 0, rss.series)


def _schedule(canaries: Canaries, opts: LoadOptions) -> None:
    """Canary i turns slow at an even spacing across the run, after `settle_s`."""
    span = max(0.0, opts.seconds - opts.settle_s - 2 * (opts.window_s + opts.grace_s) - 1)
    first = time.time() + opts.settle_s
    for i in range(len(canaries.keys)):
        canaries.inject_at[i] = first + span * i / max(1, len(canaries.keys))


def _drain(watch: StoreWatch | None, before: float, expected: int, limit_s: float,
           stopped: float) -> float | None:
    """Seconds after the senders stopped until the sink had handled every accepted record;
    None when it had not within `limit_s`."""
    if watch is None:
        return None
    while time.monotonic() - stopped < limit_s:
        count = watch.count()
        if count is not None and count - before >= expected:
            return time.monotonic() - stopped
        time.sleep(0.2)
    return None


def _wait_rollbacks(actions: ActionsWatch | None, n: int, opts: LoadOptions) -> None:
    if actions is None:
        return
    deadline = time.monotonic() + 4 * (opts.window_s + opts.grace_s) + 10
    while len(actions.rollbacks) < n and time.monotonic() < deadline:
        time.sleep(0.1)


def _rollbacks(actions: ActionsWatch | None, canaries: Canaries | None,
               keys: list[tuple[str, str]], grace_s: float) -> list[tuple[float, float, float]]:
    """Per rollback: read time - ack of the first regressed record of the failed window,
    split at `end + grace` (an early rollback waits for no window close: all of it is the
    rest)."""
    if actions is None or canaries is None:
        return []
    index = {k: i for i, k in enumerate(keys)}
    out = []
    for read, data in actions.rollbacks:
        i = index.get((data["model"], data["site"]))
        if i is None:
            continue
        start = datetime.fromisoformat(data["window"]["start"]).timestamp()
        end = datetime.fromisoformat(data["window"]["end"]).timestamp()
        acks = [ack for ts, ack in canaries.regressed[i] if start <= ts < end]
        if acks:
            crossed = min(acks)
            wait = 0.0 if data.get("early") else end + grace_s - crossed
            out.append((read - crossed, wait, read - crossed - wait))
    return out
