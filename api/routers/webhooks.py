"""Webhook subscriptions: create, list, show, delete, enable, disable; plus the two routes
the delivery service uses (its view with secrets, and last-delivery reports). Every route
needs the admin scope: a subscription decides where Steward's events go."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Response

from api.deps import AdminDep, WebhooksDep
from api.webhooks import public
from steward.errors import NotFound
from steward.webhooks.model import (
    DeliveryView,
    DisableIn,
    LastDelivery,
    SubscriptionCreated,
    SubscriptionIn,
    SubscriptionList,
    SubscriptionOut,
)

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])
SubId = Annotated[str, Path(max_length=100)]
_404 = {404: {"description": "no subscription has this id"}}


def _missing(sid: str) -> NotFound:
    return NotFound(f"no webhook subscription {sid!r}")


@router.post("/webhooks", status_code=201, response_model=SubscriptionCreated)
def create(admin: AdminDep, webhooks: WebhooksDep, body: SubscriptionIn) -> SubscriptionCreated:
    """Subscribe a URL to event types. The answer carries the signing secret (given or
    generated): it is shown this once, keep it in the receiver."""
    sub = webhooks.create(body)
    log.info("webhook %s created by %s for %s (%s)", sub.id, admin.name, sub.event_types,
             sub.format)
    return SubscriptionCreated.model_validate(sub.model_dump())


@router.get("/webhooks", response_model=SubscriptionList)
def list_all(_admin: AdminDep, webhooks: WebhooksDep) -> SubscriptionList:
    return SubscriptionList(subscriptions=[public(s) for s in webhooks.all()])


@router.get("/webhooks/{sid}", response_model=SubscriptionOut, responses=_404)
def show(_admin: AdminDep, webhooks: WebhooksDep, sid: SubId) -> SubscriptionOut:
    """State (active, or disabled and why) and the latest delivery result."""
    sub = webhooks.get(sid)
    if sub is None:
        raise _missing(sid)
    return public(sub)


@router.delete("/webhooks/{sid}", status_code=204, responses=_404)
def delete(admin: AdminDep, webhooks: WebhooksDep, sid: SubId) -> Response:
    """Its queued deliveries are dead-lettered by the delivery service."""
    if not webhooks.delete(sid):
        raise _missing(sid)
    log.info("webhook %s deleted by %s", sid, admin.name)
    return Response(status_code=204)


@router.post("/webhooks/{sid}/enable", response_model=SubscriptionOut, responses=_404)
def enable(admin: AdminDep, webhooks: WebhooksDep, sid: SubId) -> SubscriptionOut:
    """Active again; deliveries parked when it was disabled are sent."""
    sub = webhooks.set_state(sid, active=True)
    if sub is None:
        raise _missing(sid)
    log.info("webhook %s enabled by %s", sid, admin.name)
    return public(sub)


@router.post("/webhooks/{sid}/disable", response_model=SubscriptionOut, responses=_404)
def disable(admin: AdminDep, webhooks: WebhooksDep, sid: SubId,
            body: DisableIn) -> SubscriptionOut:
    """No deliveries until enabled (the delivery service calls this on a 410)."""
    sub = webhooks.set_state(sid, active=False, reason=body.reason)
    if sub is None:
        raise _missing(sid)
    log.warning("webhook %s disabled by %s: %s", sid, admin.name, body.reason)
    return public(sub)


@router.put("/webhooks/{sid}/last-delivery", status_code=204, responses=_404)
def last_delivery(_admin: AdminDep, webhooks: WebhooksDep, sid: SubId,
                  body: LastDelivery) -> Response:
    """The delivery service reports its latest attempt here."""
    if not webhooks.record(sid, body):
        raise _missing(sid)
    return Response(status_code=204)


@router.get("/internal/webhooks", response_model=DeliveryView)
def delivery_view(admin: AdminDep, webhooks: WebhooksDep) -> DeliveryView:
    """Every subscription with its secret, for the delivery service (which signs with
    them). Give that service an admin token of its own; nothing else needs this route."""
    log.debug("webhook secrets read by %s", admin.name)
    return DeliveryView(subscriptions=webhooks.all())
