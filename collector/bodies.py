"""HTTP request bodies and error headers, shared by the collector and the edge agent."""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import Request

from collector import otlp
from steward.errors import InvalidInput, PayloadTooLarge, StewardError


async def read_limited(request: Request, max_bytes: int) -> bytes:
    """The raw body, refusing (413) anything larger than `max_bytes` before reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"body of {declared} bytes exceeds the {max_bytes}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"body exceeds the {max_bytes}-byte limit")
        chunks.append(chunk)
    body = b"".join(chunks)
    return otlp.read_body(body, request.headers.get("content-encoding"), max_bytes)


def error_headers(exc: StewardError) -> dict[str, str]:
    """Headers an error answer carries: when to retry, or how to authenticate."""
    headers = {}
    if exc.retry_after:
        headers["Retry-After"] = str(math.ceil(exc.retry_after))
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="steward"'
    return headers


def records_of(body: bytes) -> list[Any]:
    """The records of a JSON batch: `{"records": [...]}` or a bare list, never empty."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInput(f"body is not valid JSON: {exc}") from exc
    records = doc.get("records") if isinstance(doc, dict) else doc
    if not isinstance(records, list):
        raise InvalidInput('expected {"records": [...]} or a JSON array of records')
    if not records:
        raise InvalidInput("the batch holds no records")
    return records
