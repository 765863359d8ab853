"""Profile mode: inference records of versions with a spec become one profile per window.

The intake hands every validated batch to `split`: records of a (model, version) whose
profile spec is known are grouped by (model, version, site, window) and committed to
the pending rows (`commit`); the others are forwarded raw as before, so a version
without a spec loses nothing. Windows are the drift judge's: tumbling, aligned to the
epoch, `window_s` long. A thread closes a window once event time (the latest record
of its model/version/site) or the wall clock passes its end plus `grace_s`: it builds
the profile from the window's pending rows, appends it to the spool (signal
`profiles`, forwarded to `/v1/profiles` like any entry) and only then deletes those
rows. Records arriving for a window already closed make a second profile of that
window; the two merge downstream (`steward.profiles.merge`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from collector.agent.batch import encode_records
from collector.agent.metrics import AgentMetrics
from collector.agent.pending import Group, OpenWindow, Pending, WindowKey
from collector.agent.settings import ProfileSettings
from collector.agent.signals import INFERENCES, PROFILES
from collector.agent.specs import Specs
from collector.otlp import JSON
from steward.errors import StewardError
from steward.profiles import ProfileBuilder, ProfileSpec
from steward.schema import FeatureProfile

log = logging.getLogger(__name__)
Store = Callable[[str, str, bytes, int], None]
"""Appends one spool entry: (signal, content type, body, records); raises when it cannot."""
RAW_CHUNK = 5000


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


class Profiler:
    """Splits batches at the intake; closes windows on `tick` (a thread, or tests)."""

    def __init__(self, settings: ProfileSettings, pending: Pending, specs: Specs,
                 metrics: AgentMetrics, store: Store | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.pending = pending
        self.specs = specs
        self.metrics = metrics
        self.store = store
        self.clock = clock
        self._watermark: dict[tuple[str, str, str], float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for w in pending.windows():
            self._advance((w.key.model, w.key.version, w.key.site), w.max_ts)

    def split(self, records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Group]]:
        """(records to forward raw, groups to profile) of a validated batch."""
        raw: list[dict[str, Any]] = []
        groups: dict[WindowKey, list[dict[str, Any]]] = {}
        size = self.settings.window_s
        for r in records:
            if self.specs.get(r["model"], r["version"]) is None:
                raw.append(r)
                continue
            epoch = int(_epoch(r["ts"]))
            key = WindowKey(r["model"], r["version"], r["site"], epoch - epoch % size)
            groups.setdefault(key, []).append(r)
        if self.settings.columns_raw:  # marked, so drift judges count them once (profile)
            raw += [{**r, "profiled": True} for rs in groups.values() for r in rs]
        return raw, [Group(k, rs, max(_epoch(r["ts"]) for r in rs)) for k, rs in groups.items()]

    def commit(self, groups: list[Group]) -> None:
        """Make the groups durable (raises `PendingFull`/`Unavailable`, nothing kept)."""
        if not groups:
            return
        self.pending.add(groups)
        for g in groups:
            self._advance((g.key.model, g.key.version, g.key.site), g.max_ts)
        if not self.settings.columns_raw:
            self.metrics.replaced_records.inc(sum(len(g.records) for g in groups))

    def _advance(self, key: tuple[str, str, str], ts: float) -> None:
        with self._lock:
            self._watermark[key] = max(ts, self._watermark.get(key, ts))

    def due(self, w: OpenWindow, now: float) -> bool:
        closes = w.key.start + self.settings.window_s + self.settings.grace_s
        with self._lock:
            mark = self._watermark.get((w.key.model, w.key.version, w.key.site), 0.0)
        return max(now, mark) >= closes

    def tick(self) -> int:
        """Close every due window; returns how many profiles were spooled."""
        now, built = self.clock(), 0
        for w in self.pending.windows():
            if self.due(w, now):
                try:
                    built += self.close(w)
                except StewardError as exc:  # spool full or unwritable: try again later
                    log.warning("window %s stays pending: %s", w.key, exc.reason)
                    return built
        return built

    def close(self, w: OpenWindow) -> int:
        """Spool the window's profile (or, without a usable spec, its records raw), then
        forget its pending rows. Returns 1 when a profile was spooled."""
        assert self.store is not None, "the profiler needs a spool to write to"
        spec = self.specs.get(w.key.model, w.key.version)
        profile = self._build(spec, w) if spec is not None else None
        if profile is not None:
            body = encode_records([profile.model_dump(mode="json", by_alias=True)])
            self.store(PROFILES, JSON, body, 1)
            self.metrics.profiles_built.inc()
            self.metrics.profiled_rows.inc(profile.rows)
        else:
            self._forward_raw(self.pending.records(w.key, w.last_id))
        self.pending.delete(w.key, w.last_id)
        return int(profile is not None)

    def _build(self, spec: ProfileSpec, w: OpenWindow) -> FeatureProfile | None:
        k = w.key
        seed = int.from_bytes(hashlib.sha256(
            f"{k.model}/{k.version}/{k.site}/{k.start}".encode()).digest()[:8], "big")
        builder = ProfileBuilder(spec, seed=seed)
        nodes, tiers = set(), set()
        for r in self.pending.records(k, w.last_id):
            builder.add(r.get("features") or {}, r.get("prediction"),
                        latency_ms=r.get("latency_ms"), error=bool(r.get("error")),
                        sample_rate=r.get("sample_rate") or 1.0)
            nodes.add(r.get("node"))
            tiers.add(r.get("tier"))
        start = datetime.fromtimestamp(k.start, UTC)
        end = datetime.fromtimestamp(k.start + self.settings.window_s, UTC)
        try:
            return builder.build(k.model, k.version, k.site,
                                 nodes.pop() if len(nodes) == 1 else None, start, end,
                                 tier="cloud" if tiers == {"cloud"} else "edge")
        except (ValidationError, ValueError) as exc:
            log.error("cannot profile window %s (%s); forwarding its %d records raw",
                      k, exc, w.records)
            return None

    def _forward_raw(self, records: Iterable[dict[str, Any]]) -> None:
        assert self.store is not None
        chunk: list[dict[str, Any]] = []
        for r in records:
            chunk.append(r)
            if len(chunk) >= RAW_CHUNK:
                self.store(INFERENCES, JSON, encode_records(chunk), len(chunk))
                chunk = []
        if chunk:
            self.store(INFERENCES, JSON, encode_records(chunk), len(chunk))

    def start(self) -> Profiler:
        self._thread = threading.Thread(target=self._run, name="agent-profiler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop closing windows; open ones stay pending on disk for the next start."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.wait(self.settings.tick_s):
            try:
                self.tick()
            except Exception:  # the loop must outlive any bug in one tick
                log.exception("profiler tick failed")
