"""Listen, whisper and barge from the wall (login: supervisor only; admins run the service, they do not join calls).

* ``POST /api/wall/calls/{call_id}/supervise`` ``{"sdp", "type": "offer", "mode": "listen"|"whisper"|"barge"}`` ->
  ``{"sdp", "type": "answer", "call_id", "mode"}``: the supervisor's browser joins the live agent call with its own
  WebRTC leg (mixing: :mod:`ivr.call.supervise`). One call per supervisor: joining another leaves the first.
* ``POST /api/wall/calls/{call_id}/supervise/mode`` ``{"mode"}`` -> ``{"call_id", "mode"}``.
* ``POST /api/wall/calls/{call_id}/supervise/end`` -> 204.

Every join, mode change and leave is logged in the call record (``extra.supervision``: ``supervisor``, ``event``
join | mode | leave, ``mode``, ``at``; a leave has its ``reason``: left, switched, call_ended, supervisor_hangup,
no_media, shutdown, error) when it happens, a leave at the end of the call before the record is saved, and sent to
the agent's desktop as a ``supervision`` event. Errors: 400 bad
body, 404 no live agent call with that id, 409 you are not on that call (mode/end).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ivr.call.supervise import MODES, Supervision
from ivr.services.agents import Account
from ivr.web.auth import require_roles
from ivr.web.rtc import webrtc

log = logging.getLogger(__name__)
router = APIRouter()
SUPERVISOR = require_roles("supervisor")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return body if isinstance(body, dict) else None


def _bridge(request: Request, call_id: str) -> Any:
    warm = getattr(request.app.state.calls, "transfer_hook", None)
    return getattr(warm, "bridges", {}).get(call_id)


def _mine(request: Request) -> dict[str, Supervision]:
    """Live supervisions by supervisor account id."""
    st = request.app.state
    if getattr(st, "supervisions", None) is None:
        st.supervisions = {}
    return st.supervisions


def _announce(request: Request, bridge: Any, sup: Supervision, event: str) -> None:
    """The agent's desktop event for a join, mode change or leave (the record entry is the Supervision's)."""
    desk = getattr(request.app.state.calls, "desk", None)
    if desk is not None:
        desk.publish(bridge.agent_id, {"type": "supervision", "call_id": sup.call_id, **sup.last})
    log.info("supervisor %s %s call %s (%s)", sup.supervisor, event, sup.call_id, sup.mode)


@router.post("/api/wall/calls/{call_id}/supervise")
async def supervise(call_id: str, request: Request, acc: Account = SUPERVISOR) -> Response:
    body = await _body(request)
    mode = (body or {}).get("mode", "listen")
    if body is None or mode not in MODES or "sdp" not in body or "type" not in body:
        return _error(400, 'body must be {"sdp": "...", "type": "offer", "mode": "listen"|"whisper"|"barge"}')
    bridge = _bridge(request, call_id)
    if bridge is None or not hasattr(bridge, "supervisors"):  # a chat has no audio to join
        return _error(404, f"no live agent call {call_id}")
    old = _mine(request).pop(acc.agent_id, None)
    if old is not None:
        old.stop("switched")
    settings = request.app.state.settings
    rtc = await webrtc()
    try:
        leg, answer = await rtc.WebRtcPort.from_offer(
            body["sdp"], body["type"], call_id=f"{call_id}-sup", language=settings.language,
            ice_hosts=rtc.ice_hosts_for(settings.host, settings.public_ip), extra={"supervisor": acc.username},
            settings=settings)
    except rtc.OfferError as e:
        return _error(e.status, str(e))
    if bridge.ended.is_set():  # the call ended while the leg was set up
        with contextlib.suppress(Exception):
            await leg.hangup("call_ended")
        return _error(404, f"no live agent call {call_id}")
    session = getattr(request.app.state.calls, "sessions", {}).get(call_id)
    sup = Supervision(call_id, acc.username, leg, mode, record=getattr(session, "record", None),
                      on_change=lambda event, _mode: _announce(request, bridge, sup, event))
    _mine(request)[acc.agent_id] = sup
    bridge.supervisors.append(sup)
    sup.note("join")

    async def run() -> None:
        try:
            if not await asyncio.wait_for(leg.ready(), 20):
                sup.stop("no_media")
            await sup.run(bridge.ended)
        except Exception as e:  # the call goes on whatever happens to the supervisor's leg
            log.warning("supervision of %s ended: %s", call_id, e)
            sup.stop("error")
        finally:
            sup.stop("error")  # no-op when ended: the leave was logged when it happened (Supervision.stop)
            with contextlib.suppress(ValueError):
                bridge.supervisors.remove(sup)
            if _mine(request).get(acc.agent_id) is sup:
                _mine(request).pop(acc.agent_id, None)

    tasks = getattr(request.app.state, "supervise_tasks", None)
    if tasks is None:
        tasks = request.app.state.supervise_tasks = set()
    task = asyncio.create_task(run(), name=f"supervise-{call_id}")
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return JSONResponse({**answer, "call_id": call_id, "mode": mode})


def _current(request: Request, acc: Account, call_id: str) -> Supervision | None:
    sup = _mine(request).get(acc.agent_id)
    return sup if sup is not None and sup.call_id == call_id and not sup.ended.is_set() else None


@router.post("/api/wall/calls/{call_id}/supervise/mode")
async def supervise_mode(call_id: str, request: Request, acc: Account = SUPERVISOR) -> Response:
    body = await _body(request)
    if body is None or body.get("mode") not in MODES:
        return _error(400, 'body must be {"mode": "listen"|"whisper"|"barge"}')
    sup = _current(request, acc, call_id)
    if sup is None:
        return _error(409, f"you are not on call {call_id}")
    sup.set_mode(body["mode"])
    return JSONResponse({"call_id": call_id, "mode": sup.mode})


@router.post("/api/wall/calls/{call_id}/supervise/end")
async def supervise_end(call_id: str, request: Request, acc: Account = SUPERVISOR) -> Response:
    sup = _current(request, acc, call_id)
    if sup is None:
        return _error(409, f"you are not on call {call_id}")
    sup.stop("left")
    return Response(status_code=204)


async def shutdown(app: Any) -> None:
    for sup in list((getattr(app.state, "supervisions", None) or {}).values()):
        sup.stop("shutdown")
    tasks = list(getattr(app.state, "supervise_tasks", None) or ())
    if tasks:
        await asyncio.wait(tasks, timeout=5)
