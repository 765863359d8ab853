"""The chart page in a real browser: Debian's headless Chromium loads GET /ui from an API
assembled as api/main.py assembles it (its sinks count into the registry the charts
sample), fed by real traffic on the embedded broker: records through the collector, a
canary rollback and a denied retraining request through the shipped governance rules.
The screenshot is decoded and each chart's card is checked for drawn series; the DOM for
the charts' SVG elements."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from api.app import create_app
from api.decisions import DecisionSink
from api.sink import EventSink, InferenceSink
from api.store import Store
from api.verdicts import VerdictSink
from processors.canary_latency import CanaryLatency, CanarySpec
from steward import topics as T
from steward.auth import Authenticator, new_token
from steward.bus.metrics import StreamMetrics
from steward.bus.producer import Producer
from steward.bus.runner import Runner
from steward.schema import EventType, make_event, to_kafka
from steward.schema.drift import RetrainRequested, WindowRef
from tests.png_support import read_png
from tests.support import Served

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NEEDS = "Debian's chromium is not installed (`make test` installs it with apt-get when it " \
        "runs as root; otherwise install the chromium package yourself)"
SPEC = CanarySpec(model="m", baseline_version="1", canary_version="2", factor=1.5,
                  window_s=10, grace_s=0, min_samples=5)
WIDTH, HEIGHT = 1280, 1900
POINTS = 8
STATIC = Path(__file__).resolve().parents[2] / "api" / "static"
DRAWN = {"ingest", "sites", "rollouts", "governance", "denials"}
EMPTY = {"drift", "gpu", "cost", "rollout-score"}
"""This traffic has no drift verdicts, no GPU samples and no progressive rollout: those
cards say 'no data yet'."""


class _Started:
    def __init__(self, stop: Any, thread: threading.Thread) -> None:
        self._stop, self.thread = stop, thread
        thread.start()

    def stop(self) -> None:
        self._stop()
        self.thread.join(timeout=15)


def _api(kafka, services: list[Any], tmp_path: Path, reader_spec: Any) -> Served:
    """The API process's parts wired as api/main.py wires them; the charts sample every
    0.5 s and keep the last POINTS samples."""
    registry, store = CollectorRegistry(), Store(tmp_path / "steward.duckdb")
    services.append(store)
    app = create_app(store, registry, {"store": store.ping}, auth=Authenticator([reader_spec]),
                     charts_interval_s=0.5, charts_points=POINTS)
    charts = app.state.charts
    metrics = StreamMetrics(registry)
    for sink in (EventSink(store), InferenceSink(store), VerdictSink(app.state.verdicts),
                 DecisionSink(app.state.decisions)):
        producer = Producer(kafka)
        services.append(producer)
        runner = Runner(sink, kafka=kafka, group_id=f"{kafka.topic_prefix}{sink.name}",
                        producer=producer, metrics=metrics, poll_timeout_ms=200,
                        tick_interval_s=0.5)
        services.append(_Started(runner.stop, threading.Thread(target=runner.run, daemon=True)))
    stop = threading.Event()
    services.append(_Started(stop.set, threading.Thread(target=charts.run, args=(stop,),
                                                        daemon=True)))
    server = Served(app)
    services.append(server)
    return server


def _records(model: str, version: str, site: str, ms: float, n: int, at: datetime,
             tag: str) -> list[dict]:
    return [{"id": f"{tag}-{i}", "model": model, "version": version, "site": site,
             "tier": "edge", "ts": (at + timedelta(milliseconds=10 * i)).isoformat(),
             "latency_ms": ms} for i in range(n)]


def _canary_regresses(collector_url: str) -> None:
    """Baseline at 10 ms, canary at 50 ms, then a record that closes the window: the
    canary judge proposes a rollback (stamped 20 s ago, so the site counts as online)."""
    t0 = datetime.now(UTC) - timedelta(seconds=20)
    records = (_records("m", "1", "shop-lyon", 10.0, 10, t0, "b")
               + _records("m", "2", "shop-lyon", 50.0, 10, t0, "c")
               + _records("m", "1", "shop-lyon", 10.0, 1, t0 + timedelta(seconds=15), "z"))
    assert httpx.post(f"{collector_url}/v1/inferences", json={"records": records}).status_code \
        == 200


def _steady_traffic(collector_url: str, stop: threading.Event) -> None:
    """Another model's records from a second site, a few every 0.3 s: the ingest line."""
    i = 0
    while not stop.wait(0.3):
        i += 1
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(f"{collector_url}/v1/inferences", timeout=5, json={"records": _records(
                "ctr", "3", "factory-berlin", 8.0, 5, datetime.now(UTC), f"s{i}")})


def _retraining_without_a_team(kafka) -> None:
    """A retraining proposal naming no team: the shipped policies deny it."""
    data = RetrainRequested(
        model="churn", version="2.0.0", trigger_id="t1", sites=["shop-lyon"],
        windows=[WindowRef(site="shop-lyon", start="s", end="e", verdict_id="v1",
                           drifted_columns=["amount"])],
        drifted_columns=["amount"], method="calibrated", rule="2 of 3", cooldown_s=60)
    event = make_event(EventType.RETRAIN_REQUESTED, source="/steward/tests/ui",
                       subject="churn/2.0.0", data=data, key="churn",
                       time=datetime.now(UTC), facts=("ui",))
    key, value, headers = to_kafka(event)
    producer = KafkaProducer(bootstrap_servers=kafka.servers())
    producer.send(T.PROPOSALS.full(kafka.topic_prefix), value, key=key,
                  headers=headers).get(timeout=30)
    producer.close()


def _ready(series: dict[str, Any]) -> bool:
    """Every chart that this traffic feeds has a value in every sample the buffer holds
    (so each line spans the chart) and a non-zero one in the latest; the governance chart
    has both results."""
    charts = {c["id"]: {s["name"]: s["values"] for s in c["series"]} for c in series["charts"]}
    return len(series["times"]) == POINTS and all(
        charts[c] and all(None not in v for v in charts[c].values())
        and any(v[-1] for v in charts[c].values()) for c in DRAWN) \
        and {"allowed", "denied"} <= set(charts["governance"])


class _Charts(HTMLParser):
    """Per chart section (data-chart): its series elements and whether it says no data."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, dict[str, Any]] = {}
        self.current: str | None = None
        self.in_empty = False
        self.shown: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id") in ("banner", "login"):
            self.shown[a["id"]] = a.get("style") or ""
        if tag == "section" and a.get("data-chart"):
            self.current = a["data-chart"]
            self.charts[self.current] = {"paths": [], "bars": [], "empty": False}
        elif self.current and a.get("class") == "series":
            kind = "paths" if tag == "path" else "bars"
            self.charts[self.current][kind].append((a.get("data-series"), a.get("d")))
        self.in_empty = self.current is not None and a.get("class") == "empty"

    def handle_data(self, data: str) -> None:
        if self.in_empty and data.strip() == "no data yet":
            self.charts[self.current]["empty"] = True


def _cards(image: np.ndarray, x: int) -> list[tuple[int, int]]:
    """(top, bottom) of each white card crossing column x: runs of white pixels taller
    than the header."""
    white = np.all(image[:, x, :3] == 255, axis=1)
    runs, start = [], None
    for y, w in enumerate([*white, False]):
        if w and start is None:
            start = y
        elif not w and start is not None:
            if y - start > 150:
                runs.append((start, y))
            start = None
    return runs


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def _palette() -> list[tuple[int, int, int]]:
    """charts.js's series colours (none of them grey: text is anti-aliased in greys)."""
    script = (STATIC / "charts.js").read_text()
    listed = re.search(r"COLOURS = \[(.*?)\]", script, re.S).group(1)
    colours = [_rgb(c) for c in re.findall(r"#[0-9a-f]{6}", listed)]
    assert colours and all(len(set(c)) > 1 for c in colours)
    return colours


def _banner() -> tuple[int, int, int]:
    """ui.html's error banner colour."""
    css = (STATIC / "ui.html").read_text()
    return _rgb(re.search(r"#banner \{[^}]*background: (#[0-9a-f]{6})", css).group(1))


def _series_pixels(region: np.ndarray, palette: list[tuple[int, int, int]]) -> int:
    rgb = region[:, :, :3].reshape(-1, 3)
    return int(sum(np.all(rgb == colour, axis=1).sum() for colour in palette))


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on a profile of the test's own; the page's DOM on stdout once it
    has fetched and drawn (virtual time waits for pending fetches)."""
    out = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--user-data-dir={tmp_path / 'chromium'}", "--hide-scrollbars",
         "--force-device-scale-factor=1", f"--window-size={WIDTH},{HEIGHT}",
         "--virtual-time-budget=4000", "--dump-dom", *args],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    return out


@pytest.mark.integration
@pytest.mark.timeout(150)
@pytest.mark.skipif(CHROMIUM is None, reason=NEEDS)
def test_the_chart_page_draws_the_signals_of_real_traffic(
        kafka, start_collector, start_runner, start_gate, services, tmp_path, wait):
    token, spec = new_token("browser", ["read"], None)
    api = _api(kafka, services, tmp_path, spec)
    collector = start_collector()
    start_runner(CanaryLatency([SPEC]))
    start_gate()
    stop = threading.Event()
    services.append(_Started(stop.set, threading.Thread(
        target=_steady_traffic, args=(collector.url, stop), daemon=True)))
    _canary_regresses(collector.url)
    _retraining_without_a_team(kafka)
    auth = {"authorization": f"Bearer {token}"}
    wait(lambda: _ready(httpx.get(f"{api.url}/ui/series", headers=auth).json()), 60,
         "a rollback, a denial and the ingest line in the chart series", interval_s=0.5)

    shot = tmp_path / "charts.png"
    out = _chromium(tmp_path, f"--screenshot={shot}", f"{api.url}/ui#token={token}")
    assert shot.exists(), out.stderr[-2000:]

    dom = _Charts()
    dom.feed(out.stdout)
    assert sorted(dom.charts) == sorted(DRAWN | EMPTY), out.stdout[-2000:]
    assert "none" in dom.shown["banner"] and "none" in dom.shown["login"]
    for chart in DRAWN - {"denials"}:
        paths = dom.charts[chart]["paths"]
        assert paths and all(len(re.findall(r"[ML]", d or "")) >= 1 for _, d in paths), chart
        assert not dom.charts[chart]["empty"], chart
    assert any(d.count("L") >= 1 for _, d in dom.charts["ingest"]["paths"])  # a line, not a dot
    assert "steward.model.rolled_back" in {n for n, _ in dom.charts["rollouts"]["paths"]}
    assert {n for n, _ in dom.charts["governance"]["paths"]} == {"allowed", "denied"}
    assert dom.charts["denials"]["bars"]
    assert all(dom.charts[c]["empty"] and not dom.charts[c]["paths"] for c in EMPTY)

    image = read_png(shot)
    assert image.shape[:2] == (HEIGHT, WIDTH)
    assert not np.all(image[:, :, :3] == _banner(), axis=2).any(), "the error banner shows"
    palette = _palette()
    order = list(dom.charts)  # a two-column grid (cards >= 560 px wide), row by row
    for x, names in ((26, order[0::2]), (WIDTH - 26, order[1::2])):
        cards = _cards(image, x)
        assert len(cards) == len(names), f"cards at x={x}: {cards}"
        x0, x1 = (0, WIDTH // 2) if x < WIDTH // 2 else (WIDTH // 2, WIDTH)
        for name, (top, bottom) in zip(names, cards, strict=True):
            pixels = _series_pixels(image[top:bottom, x0:x1], palette)
            if name in DRAWN:  # lines or bars, beyond the legend's 10x10 swatches
                assert pixels > 500, f"{name}: only {pixels} pixels of series colours"
            else:
                assert pixels == 0, f"{name} shows {pixels} pixels of series colours"

    # without a token the page asks for one, and draws nothing
    out = _chromium(tmp_path, f"{api.url}/ui")
    dom = _Charts()
    dom.feed(out.stdout)
    assert "block" in dom.shown["login"] and "none" in dom.shown["banner"]
    assert not dom.charts
