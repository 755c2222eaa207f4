"""The supervisor's live wall (``/wall``, login: supervisor or admin); figures: :mod:`ivr.web.wallstate`.

* ``GET /wall``: the page (Chinese; static ``wall.js``/``wall.css``, no inline code: the app's CSP).
* ``GET /api/wall``: one snapshot ``{"type": "wall", "at", "calls": {"bot", "queue", "agent", "total"}, "live",
  "queue": {"length", "longest_wait_s", "waiting", "alert_at"}, "agents": {"by_presence", "list"},
  "service_level": {"threshold_s", "answered_within", "offered", "value"}, "alerts"}``.
* ``GET /api/wall/events``: Server-Sent Events, a snapshot at once, then at every queue or presence change of the
  agent desk and at least every second (the waiting times move). The login is re-checked every few seconds; after
  a logout the stream sends ``session_ended`` and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from ivr.services.agents import Account
from ivr.web.auth import DASHBOARD, session_valid
from ivr.web.wallstate import WallState

log = logging.getLogger(__name__)
router = APIRouter()
TICK_S = 1.0
RECHECK_S = 3.0


def wall_state(request: Request) -> WallState:
    st = request.app.state
    wall = getattr(st, "wall", None)
    if wall is None:
        wall = st.wall = WallState(st)
    return wall


@router.get("/wall", response_class=HTMLResponse, include_in_schema=False)
def wall_page(request: Request, acc: Account = DASHBOARD) -> HTMLResponse:
    s = request.app.state.settings
    return request.app.state.templates.TemplateResponse(
        request, "wall.html", {"account": acc, "service_level_s": s.service_level_s, "queue_alert": s.wall_queue_alert})


@router.get("/api/wall")
async def wall_api(request: Request, acc: Account = DASHBOARD) -> JSONResponse:
    return JSONResponse(await wall_state(request).snapshot())


@router.get("/api/wall/events")
async def wall_events(request: Request, acc: Account = DASHBOARD) -> Response:
    wall = wall_state(request)
    desk = getattr(request.app.state.calls, "desk", None)
    key = "wall:" + acc.agent_id  # the desk's queue/presence broadcasts reach every subscriber key
    q: asyncio.Queue | None = desk.subscribe(key) if desk is not None else None
    recheck = float(getattr(request.app.state, "session_recheck_s", RECHECK_S))

    async def stream() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        checked = loop.time()
        try:
            yield "retry: 2000\n\n"
            while True:
                snap = await wall.snapshot()
                yield f"data: {json.dumps(snap, ensure_ascii=False, default=str)}\n\n"
                await _wait(q, TICK_S)
                if loop.time() - checked >= recheck:
                    checked = loop.time()
                    if not await asyncio.to_thread(session_valid, request, acc):
                        yield 'data: {"type": "session_ended"}\n\n'
                        return
                if await request.is_disconnected():
                    return
        finally:
            if desk is not None and q is not None:
                desk.unsubscribe(key, q)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _wait(q: asyncio.Queue | None, timeout: float) -> None:
    """Until the desk says something changed (queue, presence) or ``timeout``; drains what piled up."""
    if q is None:
        await asyncio.sleep(timeout)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(q.get(), timeout)
        await asyncio.sleep(0.05)  # one change often comes as a few events: send one snapshot for them
    while not q.empty():
        q.get_nowait()
