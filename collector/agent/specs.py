"""Profile specs per model version: from memory, else from disk, else fetched in the background.

The intake asks for a spec on every inference batch and must never wait for the
network (the link may be down for hours): `get` answers from what is cached, and a
version it does not know, or knows from long ago, is fetched by a background thread
from the API (`GET /references/{model}/{version}/profile-spec`). Until a spec is
there the version's records are forwarded raw, never dropped. Fetched specs are
written to the spool file, so a restarted agent profiles offline at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import httpx
from pydantic import ValidationError

from collector.agent.pending import Pending
from steward.profiles import ProfileSpec

log = logging.getLogger(__name__)


class Specs:
    """`get(model, version)` from the cache; misses and stale entries fetched behind it."""

    def __init__(self, api_url: str, store: Pending, *, ttl_s: float = 3600.0,
                 retry_s: float = 60.0, client: httpx.Client | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.api_url = api_url.rstrip("/")
        self.store = store
        self.ttl_s, self.retry_s = ttl_s, retry_s
        self.client = client or httpx.Client(timeout=10.0)
        self.clock = clock
        self._specs: dict[tuple[str, str], tuple[ProfileSpec, float]] = {}
        self._next_try: dict[tuple[str, str], float] = {}
        self._wanted: set[tuple[str, str]] = set()
        self._cv = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        for key, (body, fetched_at) in store.specs().items():
            try:
                self._specs[key] = (ProfileSpec.model_validate_json(body), fetched_at)
            except ValidationError as exc:
                log.warning("cached profile spec of %s %s is unusable (%s); fetching again",
                            *key, exc.error_count())

    def get(self, model: str, version: str) -> ProfileSpec | None:
        """The cached spec (stale or not), asking for a fetch when it is missing or stale."""
        key = (model, version)
        cached = self._specs.get(key)
        now = self.clock()
        if (cached is None or now - cached[1] >= self.ttl_s) and \
                now >= self._next_try.get(key, 0.0):
            with self._cv:
                self._wanted.add(key)
                self._cv.notify()
        return cached[0] if cached else None

    def fetch(self, model: str, version: str) -> ProfileSpec | None:
        """Ask the API now; keep and return the spec, or None (absent, unreachable)."""
        key = (model, version)
        self._next_try[key] = self.clock() + self.retry_s
        url = f"{self.api_url}/references/{model}/{version}/profile-spec"
        try:
            resp = self.client.get(url)
        except httpx.HTTPError as exc:
            log.warning("profile spec %s %s: API unreachable (%s); records go raw",
                        model, version, exc)
            return None
        if resp.status_code == 404:
            log.info("profile spec %s %s: no reference; records go raw", model, version)
            return None
        if resp.status_code != 200:
            log.warning("profile spec %s %s: API answered %d", model, version,
                        resp.status_code)
            return None
        try:
            spec = ProfileSpec.model_validate_json(resp.content)
        except ValidationError as exc:
            log.error("profile spec %s %s from the API is invalid: %s", model, version, exc)
            return None
        if (spec.model, spec.version) != key:
            log.error("the API answered the spec of %s %s for %s %s", spec.model,
                      spec.version, model, version)
            return None
        now = self.clock()
        self.store.put_spec(model, version, resp.text, now)
        self._specs[key] = (spec, now)
        return spec

    def start(self) -> Specs:
        self._thread = threading.Thread(target=self._run, name="agent-specs", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join(15)
        self.client.close()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._wanted and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                key = self._wanted.pop()
            try:
                self.fetch(*key)
            except Exception:  # the thread must outlive any bug in one fetch
                log.exception("fetching the profile spec of %s %s failed", *key)
