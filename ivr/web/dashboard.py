"""Service-health dashboard (supervisor/admin login): ``/dashboard`` and its JSON APIs, plus scheduled retention.

* ``GET /dashboard``: the page (KPI tiles, per-channel table, charts over time, intents, cost and value, agent
  assist: suggestions shown / used / ignored and use rate, unrecognised utterances, drill-down).
* ``GET /api/stats?period=7d&channel=voice-sip`` (also ``from``/``to`` ISO dates, ``bucket=hour|day``; period syntax:
  :mod:`ivr.services.records.period`): ``{"period", "channel", "channels", "channel_groups", "by_channel",
  "offers", "kpis", "series", "intents", "sentiment", "unrecognised", "cost", "assist"}`` (KPI definitions:
  :mod:`ivr.services.records.stats`; channel groups, per-channel KPIs and offer counts:
  :mod:`ivr.services.records.channels`; ``cost``: the cost and value view, :mod:`ivr.web.value`). ``channel`` is
  a group (voice-sip, voice-webrtc, chat, webhook, other) or a raw channel name, here and in every API below.
* ``GET /api/stats/calls?...&kpi=containment`` (or ``outcome``, ``csat``, ``intent``, ``ids``, ``limit``,
  ``offset``): ``{"total", "calls": [...]}``, the calls behind a KPI. ``GET /api/stats/calls/{call_id}``: one
  call with its transcript.
* ``GET /api/stats/unrecognised?...&threshold=0.45``: grouped unrecognised utterances (training candidates).
* ``GET /api/stats/export.csv?...``: the window's call records as CSV.
* While the service runs, records and recordings older than ``retention_days`` are purged hourly.

Everything shown was masked when it was written; the caller's number appears only as ``138****5678``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from ivr.services.agents import Account
from ivr.services.records import RecordStore
from ivr.services.records.feedback import DEFAULT_THRESHOLD, collect, group
from ivr.services.records.period import PeriodError, parse_window
from ivr.services.records.stats import Filters, Stats
from ivr.web.auth import DASHBOARD
from ivr.web.stores import app_store

log = logging.getLogger(__name__)
router = APIRouter()
PURGE_INTERVAL_S = 3600.0


def _stats(request: Request) -> Stats:
    return app_store(request.app.state, "stats", Stats)


def _filters(period: str, channel: str, start: str | None, end: str | None, bucket: str | None) -> Filters:
    return Filters(parse_window(period, start=start, end=end, bucket=bucket), (channel or "").strip())


def _bad(e: Exception) -> JSONResponse:
    return JSONResponse({"error": str(e)}, status_code=400)


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
def dashboard_page(request: Request, acc: Account = DASHBOARD) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(
        request, "dashboard.html", {"account": acc, "retention_days": request.app.state.settings.retention_days})


@router.get("/api/stats")
def stats_api(request: Request, period: str = "7d", channel: str = "", start: str | None = Query(None, alias="from"),
              end: str | None = Query(None, alias="to"), bucket: str | None = None,
              acc: Account = DASHBOARD) -> JSONResponse:
    try:
        f = _filters(period, channel, start, end, bucket)
    except PeriodError as e:
        return _bad(e)
    report = _stats(request).report(f)
    from ivr.web.value import cost_report

    report["cost"] = cost_report(request, f)
    from ivr.services.records.assist_stats import assist_report

    report["assist"] = assist_report(_stats(request).url, f)  # agent-assist suggestions used / ignored
    labels = [i["intent"] for i in report.get("intents", [])] + [r["key"] for r in report["cost"]["by_intent"]]
    report["intent_labels"] = _intent_labels(request, labels)
    _label_channels(request, [*report.get("channel_groups", []), *report.get("by_channel", [])])
    return JSONResponse(report)


def _intent_labels(request: Request, intents: list[str]) -> dict[str, str]:
    """Intent name -> the language pack's label (the chart shows 查订单, not order_status)."""
    from ivr.lang import get_pack

    pack = get_pack(request.app.state.settings.language)
    return {i: pack.prompt(f"intent.{i}") for i in intents if f"intent.{i}" in pack.prompts}


def _label_channels(request: Request, rows: list[dict]) -> None:
    """Channel group rows get the language pack's label (``channel.voice-sip`` -> 电话（SIP）; the records service
    labels them with their code)."""
    from ivr.lang import get_pack

    pack = get_pack(request.app.state.settings.language)
    for row in rows:
        row["label"] = pack.desk_text(f"channel.{row['channel']}", default=row["channel"])


@router.get("/api/stats/calls")
def calls_api(request: Request, period: str = "7d", channel: str = "", start: str | None = Query(None, alias="from"),
              end: str | None = Query(None, alias="to"), kpi: str = "", outcome: str = "", csat: int | None = None,
              intent: str = "", ids: str = "", limit: int = 50, offset: int = 0,
              acc: Account = DASHBOARD) -> JSONResponse:
    try:
        f = _filters(period, channel, start, end, None)
        body = _stats(request).calls(f, kpi=kpi, outcome=outcome, csat=csat, intent=intent, limit=limit,
                                     offset=offset, call_ids=[i for i in ids.split(",") if i] if ids else None)
    except (PeriodError, ValueError) as e:
        return _bad(e)
    return JSONResponse(body)


@router.get("/api/stats/calls/{call_id}")
def call_api(request: Request, call_id: str, acc: Account = DASHBOARD) -> JSONResponse:
    rec = _stats(request).transcript(call_id)
    if rec is None:
        return JSONResponse({"error": f"no call {call_id}"}, status_code=404)
    body: dict[str, Any] = rec.as_dict()
    body.pop("caller_key", None)
    return JSONResponse(body)


@router.get("/api/stats/unrecognised")
def unrecognised_api(request: Request, period: str = "7d", channel: str = "",
                     start: str | None = Query(None, alias="from"), end: str | None = Query(None, alias="to"),
                     threshold: float = DEFAULT_THRESHOLD, limit: int = 100, acc: Account = DASHBOARD) -> JSONResponse:
    try:
        f = _filters(period, channel, start, end, None)
    except PeriodError as e:
        return _bad(e)
    groups = group(collect(_stats(request).url, f, threshold))
    return JSONResponse({"total": len(groups), "groups": [g.as_dict() for g in groups[:max(1, min(limit, 1000))]]})


@router.get("/api/stats/export.csv")
def export_api(request: Request, period: str = "7d", channel: str = "", start: str | None = Query(None, alias="from"),
               end: str | None = Query(None, alias="to"), acc: Account = DASHBOARD) -> Response:
    from ivr.services.records.export import csv_rows

    try:
        f = _filters(period, channel, start, end, None)
    except PeriodError as e:
        return _bad(e)
    url = _stats(request).url
    body = ["\ufeff", *csv_rows(url, f)]  # BOM: spreadsheets then read the Chinese text as UTF-8
    name = f"ivr-calls-{f.window.name}{'-' + f.channel if f.channel else ''}.csv"
    return StreamingResponse(iter(body), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


# --- scheduled retention -------------------------------------------------------------------------------------
async def _purge_loop(app: FastAPI) -> None:
    from ivr.services.migrate import ensure_schema
    from ivr.services.records.retention import cutoff_for, purge

    settings = app.state.settings
    interval = float(getattr(app.state, "purge_interval_s", PURGE_INTERVAL_S))
    while True:
        try:
            await asyncio.to_thread(ensure_schema, settings.database_url)
            res = await asyncio.to_thread(purge, RecordStore(settings.database_url), cutoff_for(settings.retention_days))
            app.state.last_purge = res
        except Exception as e:  # retention must never take the service down
            log.error("scheduled purge failed: %s", e)
        await asyncio.sleep(interval)


async def startup(app: FastAPI) -> None:
    """Start the hourly purge of records and recordings older than ``retention_days``."""
    app.state.purge_task = asyncio.create_task(_purge_loop(app), name="records-purge")


async def shutdown(app: FastAPI) -> None:
    task = getattr(app.state, "purge_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
