"""The forwarder: drains the spool to the collector, oldest entry first.

One background thread with its own spool connection. Each step takes the oldest
entry among the signals not waiting out a refusal, merges the entries of that
signal that follow it (up to `max_batch_bytes`/`max_batch_records`), sends them
gzip-compressed and acts on the answer (see `upstream` for the table). Entries are
deleted only after a 200, so a crash between the send and the delete repeats the
request after the restart: a duplicate upstream, which the record ids dedup.

Waits never spin: after a failure the whole link waits a jittered exponential
backoff (`tenacity.wait_random_exponential`: full jitter) or the collector's
Retry-After. Refusals wait `backoff_cap_s` at the narrowest scope that explains
them, so one refused part never stalls the rest: a 401 (the token itself) pauses
the link; a 403 (the token may not write this data, e.g. another site's records)
is narrowed to the entries concerned, which wait while later entries flow (after
a short backoff that grows while refusals follow each other); any
other odd answer (404: a collector without that route) pauses its signal only.
"""

from __future__ import annotations

import gzip
import logging
import threading
import time
from collections.abc import Callable

import httpx
from tenacity import RetryCallState, wait_random_exponential

from collector.agent.batch import Batch, merge
from collector.agent.metrics import AgentMetrics
from collector.agent.settings import AgentSettings
from collector.agent.signals import SIGNALS
from collector.agent.spool import Entry, Spool
from collector.agent.upstream import Outcome, classify, no_answer
from steward import __version__
from steward.errors import InvalidInput
from steward.tls import http_client

log = logging.getLogger(__name__)

IDLE_WAIT_S = 5.0
"""Longest sleep with an empty spool; an append wakes the forwarder at once."""
MAX_SKIPPED = 500
"""At most this many 403-refused entries are stepped over at once (SQL parameters)."""


class Forwarder:
    """Drive it with `start()`/`stop()` as a thread, or call `step()` directly (tests)."""

    def __init__(self, settings: AgentSettings, spool: Spool, metrics: AgentMetrics, *,
                 monotonic: Callable[[], float] = time.monotonic,
                 client: httpx.Client | None = None) -> None:
        self.settings = settings
        self.spool = spool
        self.metrics = metrics
        self.monotonic = monotonic
        self.client = client or http_client(timeout=settings.request_timeout_s,
                                            ca_bundle=settings.ca_bundle)
        self._backoff = wait_random_exponential(multiplier=settings.backoff_base_s,
                                                max=settings.backoff_cap_s)
        self._failures = 0
        self._paused_until = 0.0
        self._blocked: dict[str, float] = {}  # signal -> monotonic time it may send again
        self._caps: dict[str, tuple[int, int]] = {}  # signal -> (through id, entries/request)
        self._refused: dict[int, float] = {}  # entry id (403 alone) -> time it may go again
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Forwarder:
        self._thread = threading.Thread(target=self.run, name="agent-forwarder", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float | None = None) -> None:
        """Ask the loop to end; the request in flight finishes (or times out) first."""
        self._stop.set()
        self._wake.set()
        timeout_s = timeout_s or self.settings.request_timeout_s + 5
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("forwarder still busy after %.0fs; leaving it", timeout_s)
        self.client.close()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """New data was spooled: stop waiting for it (a pause after a failure still holds)."""
        self._wake.set()

    def run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                delay = self.step()
            except Exception:  # the loop must outlive any bug in one step
                log.exception("forwarder step failed; retrying in %.1fs",
                              self.settings.backoff_cap_s)
                delay = self.settings.backoff_cap_s
            if delay is None or delay > 0:
                self._wake.wait(IDLE_WAIT_S if delay is None else delay)

    def step(self) -> float | None:
        """One attempt. Returns seconds until the next is worth making (0: now;
        None: the spool has nothing sendable, wait for new data)."""
        now = self.monotonic()
        if now < self._paused_until:
            return self._paused_until - now
        open_signals = [s for s in SIGNALS if self._blocked.get(s, 0.0) <= now]
        skip = self._skipped(now)
        head = self.spool.head(open_signals, skip) if open_signals else None
        if head is None:
            later = [t - now for t in (*self._blocked.values(), *self._refused.values())
                     if t > now]
            return min(later) if later else None
        entries = self.spool.read(head[1], head[0], self._entries_cap(*head),
                                  self.settings.max_batch_bytes, self.settings.max_batch_records,
                                  skip)
        try:
            batch = merge(entries)
        except InvalidInput as exc:
            if len(entries) == 1:  # unreadable alone: it can never be sent
                self._bury(entries[0], f"unreadable spool entry: {exc.reason}")
                return 0.0
            log.warning("cannot merge %d %s entries (%s); sending them one by one",
                        len(entries), head[1], exc.reason)
            self._cap(head[1], entries[-1].id, 1)
            return 0.0
        return self._apply(batch, self._send(batch))

    def _skipped(self, now: float) -> list[int]:
        """Entries refused with 403 that wait now (the oldest MAX_SKIPPED of them; any
        beyond are tried and refused again, no faster than the backoff allows)."""
        if len(self._refused) > 2 * MAX_SKIPPED:  # forget entries long gone or due
            cutoff = now - self.settings.backoff_cap_s
            self._refused = {i: t for i, t in self._refused.items() if t > cutoff}
        return sorted(i for i, t in self._refused.items() if t > now)[:MAX_SKIPPED]

    def _entries_cap(self, entry_id: int, signal: str) -> int:
        """How many entries the next request may carry: fewer while a 400/403/413 is
        isolated, one for an entry refused before."""
        if entry_id in self._refused:
            return 1
        through, cap = self._caps.get(signal, (0, 0))
        if entry_id <= through:
            return cap
        self._caps.pop(signal, None)
        return max(1, self.settings.max_batch_records)

    def _cap(self, signal: str, through_id: int, entries: int) -> None:
        through, _ = self._caps.get(signal, (0, 0))
        self._caps[signal] = (max(through, through_id), max(1, entries))

    def _send(self, batch: Batch) -> Outcome:
        headers = {"Content-Type": batch.content_type, "Content-Encoding": "gzip",
                   "User-Agent": f"steward-agent/{__version__}"}
        if self.settings.token is not None:
            headers["Authorization"] = f"Bearer {self.settings.token.get_secret_value()}"
        body = gzip.compress(batch.body, compresslevel=6, mtime=0)
        url = self.settings.collector_url + batch.signal.path
        try:
            resp = self.client.post(url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            return no_answer(f"no answer within {self.settings.request_timeout_s}s "
                             f"({type(exc).__name__})", timed_out=True)
        except httpx.HTTPError as exc:
            return no_answer(f"{type(exc).__name__}: {exc}")
        return classify(batch.signal, resp.status_code, dict(resp.headers), resp.content)

    def _apply(self, batch: Batch, outcome: Outcome) -> float:
        self.metrics.attempts.labels(outcome.kind, outcome.code).inc()
        if outcome.kind == "delivered":
            return self._delivered(batch, outcome)
        if outcome.kind in ("bad", "too_large") or (outcome.code == "403" and
                                                    len(batch.entries) > 1):
            return self._isolate(batch, outcome)
        self.metrics.link_up.set(0)
        if outcome.kind == "retry":
            return self._pause(batch, outcome)
        return self._refusal(batch, outcome)

    def _refusal(self, batch: Batch, outcome: Outcome) -> float:
        """401: the token is refused, the link waits. 403 alone: this entry waits, the
        rest go on. Anything else odd (404...): this signal waits. Nothing is dropped."""
        wait, now = self.settings.backoff_cap_s, self.monotonic()
        if outcome.code == "401":
            log.error("the collector refused the agent's token (HTTP 401: %s); keeping "
                      "everything, next try in %.1fs", outcome.reason, wait)
            self._paused_until = now + wait
            return wait
        if outcome.code == "403":
            entry = batch.entries[0]
            log.error("the collector refused the agent's token for spool entry %d (%d %s "
                      "records; HTTP 403: %s); keeping it, next try in %.1fs, later entries "
                      "go on", entry.id, entry.records, entry.signal, outcome.reason, wait)
            self._refused[entry.id] = now + wait
            self._failures += 1  # a token refused for everything must not become a storm
            delay = self._jitter(self._failures)
            self._paused_until = now + delay
            return delay
        log.error("unexpected answer from the collector on %s: HTTP %s (%s); keeping "
                  "%d entries, next try in %.1fs", batch.signal.path, outcome.code,
                  outcome.reason, len(batch.entries), wait)
        self._blocked[batch.signal.name] = now + wait
        return 0.0

    def _delivered(self, batch: Batch, outcome: Outcome) -> float:
        self.spool.delete(batch.ids)
        for i in batch.ids:
            self._refused.pop(i, None)
        name = batch.signal.name
        self.metrics.forwarded_entries.labels(name).inc(len(batch.entries))
        self.metrics.forwarded_records.labels(name).inc(batch.records)
        if outcome.rejected:
            self.metrics.rejected_records.labels(name).inc(outcome.rejected)
            log.warning("the collector rejected %d of %d %s records (it dead-letters them): %s",
                        outcome.rejected, batch.records, name, outcome.reason)
        if self._failures:
            log.info("collector reachable again; forwarding")
        self._failures = 0
        self._blocked.pop(name, None)
        self.metrics.link_up.set(1)
        return 0.0

    def _isolate(self, batch: Batch, outcome: Outcome) -> float:
        """400/403/413 on a merged batch: retry in smaller pieces (one by one for 400
        and 403, which one entry may cause; halves for 413). An entry alone that gets
        400 or 413 is dead."""
        if len(batch.entries) > 1:
            pieces = len(batch.entries) // 2 if outcome.kind == "too_large" else 1
            log.warning("HTTP %s for %d merged %s entries (%s); retrying %d at a time",
                        outcome.code, len(batch.entries), batch.signal.name, outcome.reason,
                        pieces)
            self._cap(batch.signal.name, batch.entries[-1].id, pieces)
            return 0.0
        self._bury(batch.entries[0], f"HTTP {outcome.code}: {outcome.reason}")
        return 0.0

    def _bury(self, entry: Entry, reason: str) -> None:
        moved, pruned = self.spool.bury(entry.id, reason)
        self._refused.pop(entry.id, None)
        if not moved:
            return  # dropped by the full-spool policy meanwhile; counted there
        self.metrics.dead_records.labels(entry.signal).inc(entry.records)
        log.error("spool entry %d (%d %s records) moved to the dead table: %s",
                  entry.id, entry.records, entry.signal, reason)
        for d in pruned:
            self.metrics.dropped_entries.labels(d.signal, "dead-table-full").inc(d.entries)
            self.metrics.dropped_records.labels(d.signal, "dead-table-full").inc(d.records)
            log.warning("dead table over its cap: deleted %d oldest %s entries (%d records)",
                        d.entries, d.signal, d.records)

    def _pause(self, batch: Batch, outcome: Outcome) -> float:
        """The collector cannot take data now: the whole link waits."""
        self._failures += 1
        if outcome.retry_after is not None:
            delay = min(outcome.retry_after, self.settings.max_retry_after_s)
        else:
            delay = self._jitter(self._failures)
        if outcome.timed_out and len(batch.entries) > 1:
            self._cap(batch.signal.name, batch.entries[-1].id, len(batch.entries) // 2)
        level = logging.WARNING if self._failures in (1, 10) or self._failures % 100 == 0 \
            else logging.DEBUG
        log.log(level, "forwarding %s failed (%s%s); %d entries kept, retry %d in %.1fs",
                batch.signal.name, "" if outcome.code == "none" else f"HTTP {outcome.code}: ",
                outcome.reason, len(batch.entries), self._failures, delay)
        self._paused_until = self.monotonic() + delay
        return delay

    def _jitter(self, attempt: int) -> float:
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = attempt
        return self._backoff(state)
