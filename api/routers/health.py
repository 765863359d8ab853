"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import ChecksDep
from api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(checks: ChecksDep, response: Response) -> Health:
    """Ready when every dependency (broker, store) answers."""
    results = {name: _safe(check) for name, check in checks.items()}
    if not all(results.values()):
        response.status_code = 503
        return Health(status="unavailable", checks=results)
    return Health(status="ok", checks=results)


def _safe(check) -> bool:  # a failing probe is a "no", never a 500
    try:
        return bool(check())
    except Exception:  # noqa: BLE001
        return False
