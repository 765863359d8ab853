"""Prometheus exposition of this process's registry."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import RegistryDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
def metrics(registry: RegistryDep) -> Response:
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
