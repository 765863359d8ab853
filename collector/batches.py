"""The shape every JSON batch route shares: validate each item, publish the good ones
and dead-letter the others in one call, answer with counts and reasons.

200 when anything was accepted (the rejected ones listed with their index and reason),
400 when nothing was; the answer comes only after Kafka acknowledged both the records
and the dead letters.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ValidationError

from collector.bodies import records_of
from steward import topics as T
from steward.auth import check_sites
from steward.codec import batch_model, list_adapter, validation_reason

M = TypeVar("M", bound=BaseModel)
Bad = tuple[int | None, str, bytes]
"""A rejected item: its index in the batch (None when it had none), the reason, its JSON."""


def validate_items(items: Sequence[Any], model: type[M],
                   check: Callable[[M], object] | None = None) -> tuple[list[M], list[Bad]]:
    """(valid items, rejected ones); `check` may refuse a valid item with a ValueError.
    CPU work: routes run it off the event loop."""
    if check is None:
        try:  # the common case, every item valid: one call into pydantic-core for all
            return list_adapter(model).validate_python(items), []
        except ValidationError:
            pass  # find out which, one by one, with a reason each
    good: list[M] = []
    bad: list[Bad] = []
    for i, item in enumerate(items):
        try:
            record = model.model_validate(item)
            if check is not None:
                check(record)
        except (ValidationError, ValueError) as exc:
            why = validation_reason(exc) if isinstance(exc, ValidationError) else str(exc)
            bad.append((i, why, json.dumps(item, default=str).encode()))
            continue
        good.append(record)
    return good, bad


def validate_body(body: bytes, model: type[M]) -> tuple[list[M], list[Bad]]:
    """`validate_items` of a JSON batch body. The common case, `{"records": [...]}` with
    every record valid, is parsed and validated from the bytes in one pydantic-core call
    (no Python dicts in between); anything else goes the item-by-item way, so refusals
    and their reasons are the same."""
    try:
        records = batch_model(model).model_validate_json(body).records
    except ValidationError:
        records = []
    if records:
        return records, []
    return validate_items(records_of(body), model)


async def publish(ctx: Any, outs: list) -> None:
    """Hand messages to Kafka and wait for the acks, timed."""
    started = time.monotonic()
    with ctx.otel.sending(outs) as stamped:  # trace context on each message, when traced
        await run_in_threadpool(ctx.publisher.publish, stamped)
    ctx.metrics.publish_seconds.observe(time.monotonic() - started)


async def accept(request: Request, principal: Any, topic: T.Topic, label: str,
                 good: Sequence[Any], bad: list[Bad], noun: str, ignored: int | None = None
                 ) -> Response:
    """Publish `good` to `topic` and `bad` to the dead-letter topic, count, answer."""
    ctx = request.app.state
    check_sites(principal, {r.site for r in good})
    outs = ctx.publisher.messages(topic, list(good)) + \
        ctx.publisher.dead_letters(f"collector.{label}", bad)
    await publish(ctx, outs)
    counts = {"accepted": len(good), "rejected": len(bad)}
    if ignored is not None:
        counts["ignored"] = ignored
    for outcome, n in counts.items():
        ctx.metrics.records.labels(label, outcome).inc(n)
        ctx.otel.ingested(label, outcome, n)
    status = 200 if good or not bad else 400
    ctx.metrics.requests.labels(request.url.path, str(status)).inc()
    payload: dict[str, Any] = {**counts,
                               "errors": [{"index": i, "reason": r} for i, r, _ in bad[:100]]}
    if status == 400:
        payload["detail"] = f"no {noun} in the batch is valid; see errors"
    return Response(json.dumps(payload), status_code=status, media_type="application/json")
