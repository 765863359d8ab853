"""The built-in chart page: live charts of the dashboards' signals without Grafana.

GET /ui and its script carry no data, so they are served to anyone; the page fetches
GET /ui/series, which needs the read scope when tokens are configured. A browser passes
its token as `/ui#token=...` (a fragment never reaches the server or its logs) or types it
into the page when asked; the page keeps it in sessionStorage for that tab only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.deps import ChartsDep, ReaderDep
from api.ui_schemas import ChartsOut

STATIC = Path(__file__).resolve().parents[1] / "static"

router = APIRouter(tags=["ui"])


@router.get("/ui", response_class=FileResponse,
            responses={200: {"content": {"text/html": {}}, "description": "The page"}})
def page() -> FileResponse:
    """The chart page (HTML; no data in it)."""
    return FileResponse(STATIC / "ui.html", media_type="text/html; charset=utf-8")


@router.get("/ui/charts.js", response_class=FileResponse,
            responses={200: {"content": {"text/javascript": {}}, "description": "The script"}})
def script() -> FileResponse:
    """The page's script: draws the series as SVG, no third-party code."""
    return FileResponse(STATIC / "charts.js", media_type="text/javascript; charset=utf-8")


@router.get("/ui/series", response_model=ChartsOut)
def series(_reader: ReaderDep, charts: ChartsDep) -> ChartsOut:
    """The recent samples of every chart (the API samples its metrics every few seconds
    into a bounded buffer)."""
    return charts.snapshot()
