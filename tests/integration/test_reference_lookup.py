"""Processors get references from the real API over HTTP, cached."""

from __future__ import annotations

import httpx

from processors.references import ApiReferences


def test_lookup_fetches_caches_and_survives_an_api_outage(start_api):
    api, _ = start_api()
    httpx.put(f"{api.url}/references/fraud/1.0", content=b"amount,channel\n1,pos\n2,web\n",
              headers={"content-type": "text/csv"},
              params={"categorical": ["channel"]}).raise_for_status()
    now = [0.0]
    lookup = ApiReferences(api.url, hit_ttl_s=10, miss_ttl_s=5, clock=lambda: now[0])
    ref = lookup("fraud", "1.0")
    assert ref is not None and ref.columns == {"amount": "numerical", "channel": "categorical"}
    assert ref.rows == [{"amount": 1.0, "channel": "pos"}, {"amount": 2.0, "channel": "web"}]
    assert lookup("fraud", "9.9") is None
    httpx.put(f"{api.url}/references/fraud/9.9", content=b"amount\n1\n",
              headers={"content-type": "text/csv"}).raise_for_status()
    assert lookup("fraud", "9.9") is None            # the miss is cached for 5 s
    now[0] = 6.0
    assert lookup("fraud", "9.9") is not None
    api.stop()                                       # the API goes away
    now[0] = 100.0
    assert lookup("fraud", "1.0") == ref             # expired, unreachable: keep the last one
