"""The agent desktop (``/agent``) and its JSON APIs under ``/api/agent/`` (login required: agent or supervisor).

* ``GET /api/agent/state`` -> ``{"agent", "queue", "offer", "call", "dispositions"}`` (``agent.desk_phone``: the
  agent can answer on a SIP desk phone).
* ``GET /api/agent/events``: Server-Sent Events, one JSON object per event: ``presence``, ``queue``, ``offer``
  (``offer_id``, ``call_id``, ``context``: the hand-off card), ``offer_cancelled``, ``connected``, ``transcript``
  (``who``: caller | agent, ``text``), ``caller_hangup``, ``call_ended``. While no desktop of an agent is open the
  agent is ``offline`` and never rung. The login is re-checked every few seconds (and at once on a logout):
  after a logout, a password change or a deactivation the stream sends ``session_ended`` and closes.
* ``POST /api/agent/presence`` ``{"state": "available"|"away"|"offline"}``.
* ``POST /api/agent/offers/{offer_id}/accept`` ``{"sdp", "type": "offer"}`` -> ``{"sdp", "type": "answer",
  "call_id"}``: the desktop's microphone/speaker leg (WebRTC, same rules as ``/api/calls/webrtc``); or
  ``{"via": "sip"}`` -> ``{"call_id", "via": "sip"}``: the bot dials the agent's desk phone (``ivr agents phone``)
  through the SIP gateway and bridges that leg (502 if the phone does not answer: the call goes to the next agent).
* ``POST /api/agent/offers/{offer_id}/decline`` -> 204: the call goes to the next agent.
* ``POST /api/agent/calls/{call_id}/hold`` ``{"hold": true|false}`` -> ``{"call_id", "held"}``: on hold the caller
  hears hold audio and neither side hears the other (409 before the caller is connected); event ``hold``.
* ``POST /api/agent/calls/{call_id}/hangup`` -> 204; ``POST /api/agent/calls/{call_id}/wrapup``
  ``{"disposition", "note"}`` -> 204 (the agent is available again).
* ``GET /api/agent/calls/{call_id}``: the context card and the live transcript (the agent on the call, or a
  supervisor).

Errors are JSON ``{"error": ...}``: 400 bad body, 404 unknown, 409 no longer possible (the offer went elsewhere),
503 warm transfer not enabled in this service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from ivr.services.agents import Account
from ivr.services.agents.desk import AgentDesk, DeskError
from ivr.services.agents.wrapup import DISPOSITIONS, save_wrapup
from ivr.web.auth import DESK, session_valid
from ivr.web.rtc import webrtc

log = logging.getLogger(__name__)
router = APIRouter()
HEARTBEAT_S = 15.0
RECHECK_S = 3.0  # the event stream re-checks its login this often (app.state.session_recheck_s overrides)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class DeskUnavailable(Exception):
    """This service routes no calls to agents (a CallManager without warm transfer): 503."""


def _desk(request: Request) -> AgentDesk:
    calls = request.app.state.calls
    desk = getattr(calls, "desk", None) if calls is not None else None
    if desk is None:
        raise DeskUnavailable()
    return desk


def _warm(request: Request) -> Any:
    return getattr(request.app.state.calls, "transfer_hook", None)


async def _json(request: Request) -> dict | None:
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: JSON nested too deep
        return None
    return body if isinstance(body, dict) else None


@router.get("/agent", response_class=HTMLResponse, include_in_schema=False)
def agent_page(request: Request, acc: Account = DESK) -> HTMLResponse:
    from ivr.lang import get_pack

    prompts = get_pack(request.app.state.settings.language).prompts
    terms = {k[len("term."):]: v for k, v in prompts.items() if k.startswith("term.") and isinstance(v, str)}
    return request.app.state.templates.TemplateResponse(
        request, "agent.html", {"agent": acc, "dispositions": DISPOSITIONS, "terms": terms})


@router.get("/api/agent/state")
def state(request: Request, acc: Account = DESK) -> JSONResponse:
    desk = _desk(request)
    me = desk.sign_in(acc)
    offer = None
    for w in desk.queue:
        if w.offered_to == acc.agent_id and w.offer_id:
            offer = {"offer_id": w.offer_id, "call_id": w.call_id, "context": w.handoff}
    call = None
    if me.call_id and me.presence in ("busy", "wrap_up"):  # their own call: a card even once its context is gone
        call = _call_view(request, me.call_id) or {"call_id": me.call_id, "live": False, "context": None,
                                                   "transcript": []}
    sip_ready = bool(acc.sip_uri) and getattr(request.app.state, "sip", None) is not None
    return JSONResponse({"agent": me.public() | {"desk_phone": sip_ready},
                         "queue": [w.public(i + 1) for i, w in enumerate(desk.ordered())],
                         "offer": offer, "call": call, "dispositions": list(DISPOSITIONS)})


def _call_view(request: Request, call_id: str) -> dict | None:
    """The context card and live transcript of a call an agent has (or had, until wrap-up)."""
    warm = _warm(request)
    live = warm.bridges.get(call_id) if warm is not None else None
    bridge = live or (warm.recent.get(call_id) if warm is not None else None)
    context = bridge.context if bridge is not None else next(
        (w.handoff for w in _desk(request).queue if w.call_id == call_id), None)
    cluster = getattr(request.app.state, "cluster_desk", None)
    if bridge is None and cluster is not None and cluster.call_view(call_id) is not None:
        return cluster.call_view(call_id)  # another node's call (ivr.cluster.dispatch)
    if bridge is None and context is None:  # no such call here (a typo, or long wrapped up)
        return None
    return {"call_id": call_id, "live": live is not None, "context": context,
            "transcript": list(bridge.transcript) if bridge is not None else []}


@router.post("/api/agent/presence")
async def presence(request: Request, acc: Account = DESK) -> Response:
    desk = _desk(request)
    body = await _json(request)
    if body is None or not isinstance(body.get("state"), str):
        return _error(400, 'body must be {"state": "available"|"away"|"offline"}')
    desk.sign_in(acc)
    try:
        st = desk.set_presence(acc.agent_id, body["state"])
    except DeskError as e:
        return _error(e.status, str(e))
    return JSONResponse(st.public())


@router.get("/api/agent/events")
async def events(request: Request, acc: Account = DESK) -> Response:
    desk = _desk(request)
    desk.sign_in(acc)
    q = desk.subscribe(acc.agent_id)

    recheck = float(getattr(request.app.state, "session_recheck_s", RECHECK_S))

    async def stream() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        beat = checked = loop.time()
        try:
            yield "retry: 2000\n\n"
            while True:
                try:
                    ev = await asyncio.wait_for(q.get(), recheck)
                except TimeoutError:
                    ev = None
                if ev is not None and ev.get("type") != "session_check":
                    yield f"data: {json.dumps(ev, ensure_ascii=False, default=str)}\n\n"
                    if loop.time() - checked < recheck:
                        continue
                checked = loop.time()
                if not await asyncio.to_thread(session_valid, request, acc):
                    log.info("event stream of %s closed: the login ended", acc.username)
                    yield 'data: {"type": "session_ended"}\n\n'
                    return
                if ev is None and await request.is_disconnected():
                    return
                if loop.time() - beat >= HEARTBEAT_S:
                    beat = loop.time()
                    yield ": keep-alive\n\n"
        finally:
            desk.unsubscribe(acc.agent_id, q)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.post("/api/agent/offers/{offer_id}/accept")
async def accept(offer_id: str, request: Request, acc: Account = DESK) -> Response:
    desk = _desk(request)
    body = await _json(request)
    via = body.get("via", "webrtc") if body is not None else None
    if body is None or via not in ("webrtc", "sip") or (via == "webrtc" and ("sdp" not in body or "type" not in body)):
        return _error(400, 'body must be {"sdp": "...", "type": "offer"} (browser audio) or {"via": "sip"} (desk phone)')
    call_id = next((w.call_id for w in desk.queue if w.offer_id == offer_id and w.offered_to == acc.agent_id), None)
    if call_id is None:
        return _error(409, "this call is no longer offered to you")
    proxy = next((w for w in desk.queue if w.offer_id == offer_id and w.node), None)
    cluster = getattr(request.app.state, "cluster_desk", None)
    if proxy is not None and cluster is not None:  # the call is held by another node (ivr.cluster.dispatch)
        return await cluster.accept_remote(acc, offer_id, proxy, body)
    if via == "sip":
        return await _accept_on_desk_phone(request, desk, acc, offer_id, call_id)
    settings = request.app.state.settings
    rtc = await webrtc()
    try:
        leg, answer = await rtc.WebRtcPort.from_offer(
            body["sdp"], body["type"], call_id=f"{call_id}-agent", language=settings.language,
            ice_hosts=rtc.ice_hosts_for(settings.host, settings.public_ip), extra={"agent_id": acc.agent_id},
            settings=settings,
        )
    except rtc.OfferError as e:
        return _error(e.status, str(e))
    try:
        desk.accept(acc.agent_id, offer_id, leg)
    except DeskError as e:
        await leg.close()
        return _error(e.status, str(e))
    return JSONResponse({**answer, "call_id": call_id})


async def _accept_on_desk_phone(request: Request, desk: AgentDesk, acc: Account, offer_id: str,
                                call_id: str) -> Response:
    """Dial the agent's desk phone through the SIP gateway; the answered leg is bridged like a browser's."""
    gateway = getattr(request.app.state, "sip", None)
    if not acc.sip_uri:
        return _error(409, "no desk phone is set for you (ivr agents phone NAME sip:...)")
    if gateway is None:
        return _error(503, "SIP is not enabled in this service (sip_port = 0)")
    try:
        leg = await gateway.dial(acc.sip_uri, caller="ivr", timeout=desk.options.ring_timeout_s)
    except (RuntimeError, TimeoutError, OSError) as e:
        log.warning("desk phone of %s did not answer: %s", acc.username, e)
        with contextlib.suppress(DeskError):
            desk.decline(acc.agent_id, offer_id, reason="phone_failed")
        return _error(502, f"your desk phone did not answer: {e or type(e).__name__}")
    try:
        desk.accept(acc.agent_id, offer_id, leg)
    except DeskError as e:
        await leg.hangup("offer_gone")
        return _error(e.status, str(e))
    return JSONResponse({"call_id": call_id, "via": "sip"})


@router.post("/api/agent/offers/{offer_id}/decline")
def decline(offer_id: str, request: Request, acc: Account = DESK) -> Response:
    desk = _desk(request)
    try:
        desk.decline(acc.agent_id, offer_id)
    except DeskError as e:
        return _error(e.status, str(e))
    return Response(status_code=204)


@router.post("/api/agent/calls/{call_id}/hangup")
def agent_hangup(call_id: str, request: Request, acc: Account = DESK) -> Response:
    warm = _warm(request)
    bridge = getattr(warm, "bridges", {}).get(call_id)
    if bridge is None or bridge.agent_id != acc.agent_id:
        return _error(404, f"you are not on call {call_id}")
    bridge.hangup("agent_hangup")
    return Response(status_code=204)


@router.post("/api/agent/calls/{call_id}/hold")
async def agent_hold(call_id: str, request: Request, acc: Account = DESK) -> Response:
    """``{"hold": true|false}``: the caller hears hold audio (and neither side hears the other) until taken off."""
    body = await _json(request)
    if body is None or not isinstance(body.get("hold"), bool):
        return _error(400, 'body must be {"hold": true} or {"hold": false}')
    bridge = getattr(_warm(request), "bridges", {}).get(call_id)
    if bridge is None or bridge.agent_id != acc.agent_id:
        return _error(404, f"you are not on call {call_id}")
    if not bridge.relaying:
        return _error(409, "the caller is not connected yet")
    bridge.hold(body["hold"])
    _desk(request).publish(acc.agent_id, {"type": "hold", "call_id": call_id, "held": bridge.held})
    return JSONResponse({"call_id": call_id, "held": bridge.held})


@router.post("/api/agent/calls/{call_id}/wrapup")
async def wrapup(call_id: str, request: Request, acc: Account = DESK) -> Response:
    desk = _desk(request)
    body = await _json(request)
    if body is None or not isinstance(body.get("disposition"), str) or not isinstance(body.get("note", ""), str):
        return _error(400, 'body must be {"disposition": "...", "note": "..."}')
    me = desk.agents.get(acc.agent_id)
    if me is None or me.call_id != call_id:
        return _error(404, f"call {call_id} is not waiting for your wrap-up")
    cluster = getattr(request.app.state, "cluster_desk", None)
    if cluster is not None and cluster.holds(acc.agent_id, call_id):  # another node's call: filed there
        return await cluster.wrapup(acc, call_id, body["disposition"], body.get("note", ""))
    calls = request.app.state.calls
    session = calls.sessions.get(call_id)
    for rec in (session.record if session is not None else None, calls.records.get(call_id)):
        if rec is not None:  # the live record (saved at teardown) and the recent-calls cache
            rec.disposition, rec.agent_note = body["disposition"], body.get("note", "")
    try:
        ok = await asyncio.to_thread(save_wrapup, request.app.state.settings.database_url, call_id, acc.agent_id,
                                     body["disposition"], body.get("note", ""))
    except ValueError as e:
        return _error(400, str(e))
    if not ok and session is None:
        return _error(404, f"no call {call_id} of yours")
    desk.wrapped_up(acc.agent_id)
    return Response(status_code=204)


@router.get("/api/agent/calls/{call_id}")
def call_card(call_id: str, request: Request, acc: Account = DESK) -> Response:
    desk = _desk(request)
    me = desk.agents.get(acc.agent_id)
    if acc.role != "supervisor" and (me is None or me.call_id != call_id):
        return _error(404, f"you are not on call {call_id}")
    view = _call_view(request, call_id)
    if view is None:
        return _error(404, f"no call {call_id} on the desk")
    return JSONResponse(view)


def setup(app: Any) -> None:
    @app.exception_handler(DeskUnavailable)
    async def _no_desk(_request: Request, _exc: DeskUnavailable) -> Response:
        return _error(503, "warm transfer is not enabled in this service")


async def startup(app: Any) -> None:
    """Say at start-up where calls for humans go (an operator's first question)."""
    if getattr(app.state.calls, "desk", None) is None:
        return
    from ivr.services.agents import AccountStore
    from ivr.web.stores import app_store

    def takers() -> int:
        return sum(1 for a in app_store(app.state, "accounts", AccountStore).list() if a.takes_calls)

    try:
        n = await asyncio.to_thread(takers)
    except Exception as e:  # the service runs without agents
        log.warning("cannot read agent accounts: %s", e)
        return
    if n:
        log.info("agent desktop at /agent (%d account(s) that take calls)", n)
    else:
        log.info("no agent accounts yet: transfers to a human become callback tickets; add one with "
                 "`ivr agents add NAME --role agent`, then log in at /agent")


async def shutdown(app: Any) -> None:
    """End live agent legs with the service."""
    warm = getattr(getattr(app.state, "calls", None), "transfer_hook", None)
    for bridge in list(getattr(warm, "bridges", {}).values()):
        with contextlib.suppress(Exception):
            bridge.hangup("shutdown")
