"""Reference datasets for the drift processors, fetched from the API that stores them.

The API process owns the DuckDB file (one writer per file), so processors ask it over
HTTP and cache the answer: a reference changes rarely, and a missing one is asked for
again only after `miss_ttl_s`. The lookup is passed to the processor at construction,
so tests give it a dict and production gives it this client.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx

log = logging.getLogger(__name__)
Kind = Literal["numerical", "categorical"]


@dataclass(frozen=True)
class ReferenceData:
    """What drift is judged against: rows and the declared kind of every column."""

    model: str
    version: str
    columns: dict[str, Kind]
    prediction: str | None
    rows: list[dict[str, Any]]


Lookup = Callable[[str, str], ReferenceData | None]


class ApiReferences:
    """`lookup(model, version)` backed by `GET /references/{model}/{version}`, cached."""

    def __init__(self, api_url: str, client: httpx.Client | None = None,
                 hit_ttl_s: float = 300.0, miss_ttl_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api_url = api_url.rstrip("/")
        self.client = client or httpx.Client(timeout=30.0)
        self.hit_ttl_s, self.miss_ttl_s = hit_ttl_s, miss_ttl_s
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple[float, ReferenceData | None]] = {}

    def __call__(self, model: str, version: str) -> ReferenceData | None:
        key = (model, version)
        cached = self._cache.get(key)
        if cached is not None and self.clock() < cached[0]:
            return cached[1]
        ref = self._fetch(model, version)
        if ref is None and cached is not None and cached[1] is not None:
            ref = cached[1]  # the API is unreachable: keep judging against what we had
        ttl = self.hit_ttl_s if ref is not None else self.miss_ttl_s
        self._cache[key] = (self.clock() + ttl, ref)
        return ref

    def _fetch(self, model: str, version: str) -> ReferenceData | None:
        try:
            resp = self.client.get(f"{self.api_url}/references/{model}/{version}")
        except httpx.HTTPError as exc:
            log.warning("reference %s %s: API unreachable (%s)", model, version, exc)
            return None
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            log.warning("reference %s %s: API answered %d", model, version, resp.status_code)
            return None
        doc = resp.json()
        return ReferenceData(doc["model"], doc["version"], doc["columns"], doc["prediction"],
                             doc["data"])
