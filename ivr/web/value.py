"""The dashboard's cost and value view (supervisor/admin login); figures: :mod:`ivr.services.records.value`.

* ``GET /api/stats/cost?period=7d&channel=`` (period syntax as ``/api/stats``): ``{"currency", "rates", "totals",
  "by_channel", "by_intent"}``; ``/api/stats`` carries the same object as ``cost``.
* ``GET /api/stats/cost.csv?...``: the same rows as CSV (UTF-8 with BOM): the total, one row per channel, one per
  intent.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from ivr.services.agents import Account
from ivr.services.records.period import PeriodError, parse_window
from ivr.services.records.stats import Filters
from ivr.services.records.value import CostRates, ValueView, csv_lines
from ivr.web.auth import DASHBOARD
from ivr.web.stores import app_store

router = APIRouter()


def cost_report(request: Request, f: Filters) -> dict[str, Any]:
    """The cost view for a filter, with the service's rates."""
    view = app_store(request.app.state, "value_view", ValueView)
    return view.report(f, CostRates.from_settings(request.app.state.settings))


def _filters(period: str, channel: str, start: str | None, end: str | None) -> Filters:
    return Filters(parse_window(period, start=start, end=end), (channel or "").strip())


@router.get("/api/stats/cost")
def cost_api(request: Request, period: str = "7d", channel: str = "", start: str | None = Query(None, alias="from"),
             end: str | None = Query(None, alias="to"), acc: Account = DASHBOARD) -> JSONResponse:
    try:
        f = _filters(period, channel, start, end)
    except PeriodError as e:
        return JSONResponse({"error": str(e)}, status_code=400)
    return JSONResponse(cost_report(request, f))


@router.get("/api/stats/cost.csv")
def cost_csv(request: Request, period: str = "7d", channel: str = "", start: str | None = Query(None, alias="from"),
             end: str | None = Query(None, alias="to"), acc: Account = DASHBOARD) -> Response:
    try:
        f = _filters(period, channel, start, end)
    except PeriodError as e:
        return JSONResponse({"error": str(e)}, status_code=400)
    body = "\ufeff" + "".join(csv_lines(cost_report(request, f)))
    name = f"ivr-cost-{f.window.name}{'-' + f.channel if f.channel else ''}.csv"
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
