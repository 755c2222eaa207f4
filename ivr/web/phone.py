"""The browser softphone (``/phone``) and the call API.

* ``POST /api/calls/webrtc`` ``{"sdp", "type": "offer"}`` -> ``{"sdp", "type": "answer", "call_id", "call_token"}``.
  400 malformed JSON/SDP, 413 oversized offer, 422 no audio or no common codec, 503 at capacity or shutting
  down (``{"error", "reason", "retry_after_s"}``, plus a ``Retry-After`` header), 429 (``reason``
  ``client_share``) when this client address already holds a quarter of ``max_calls`` (at least 2;
  :mod:`ivr.web.perclient`; loopback clients are not limited).
* ``GET /api/webrtc/config`` -> ``{"iceServers", "iceTransportPolicy"}``: what both pages give RTCPeerConnection.
* ``POST /api/calls/{call_id}/dtmf`` ``{"digits": "1"}`` -> 204 (the page normally sends keys on the data channel).
* ``DELETE /api/calls/{call_id}`` -> 204: the caller hangs up.
  Both need the answer's ``call_token`` in ``X-Call-Token``: 401 without it, 403 wrong (or no such live call).
* ``GET /api/calls/{call_id}`` -> the call record (live while the call runs, stored afterwards), without
  ``caller_key``: for a supervisor/admin login (401 anonymous, 403 an agent), or a record token
  (:mod:`ivr.web.callaccess`).
"""

from __future__ import annotations

import asyncio
import json
import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ivr.call.manager import CallRefused
from ivr.services.records.store import masked
from ivr.web.auth import app_secret, current_account
from ivr.web.callaccess import TOKEN_HEADER, CallTokens, public_record, record_token_ok
from ivr.web.perclient import ClientShare, client_key
from ivr.web.rtc import webrtc

log = logging.getLogger(__name__)
router = APIRouter()
RETRY_AFTER_S = 30


RECORD_ROLES = ("supervisor", "admin")


def _tokens(request: Request) -> CallTokens:
    tokens = getattr(request.app.state, "call_tokens", None)
    if tokens is None:
        tokens = request.app.state.call_tokens = CallTokens()
    return tokens


def _refused(request: Request, call_id: str) -> JSONResponse | None:
    """The 401/403 answer when the request lacks this call's token, else None."""
    status = _tokens(request).check(call_id, request.headers.get(TOKEN_HEADER))
    if status == 401:
        return _error(401, f"call token required ({TOKEN_HEADER})")
    if status:
        return _error(403, "wrong call token, or no such live call")
    return None


def _share(request: Request) -> ClientShare:
    """Live web calls per client address: at most a quarter of ``max_calls`` each (ivr.web.perclient)."""
    share = getattr(request.app.state, "webrtc_clients", None)
    if share is None:
        share = request.app.state.webrtc_clients = ClientShare(request.app.state.settings.max_calls, 4)
    return share


def _error(status: int, message: str, **extra: object) -> JSONResponse:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status in (429, 503) else None
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


@router.get("/phone", response_class=HTMLResponse, include_in_schema=False)
def phone_page(request: Request) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(request, "phone.html", {})


@router.get("/api/webrtc/config")
def webrtc_config(request: Request) -> JSONResponse:
    """The pages' RTCConfiguration: STUN/TURN servers (TURN REST credentials made per request) and policy."""
    from ivr.telephony.webrtc.ice import ice_config  # aioice: loaded on first use (ivr.web.rtc)

    return JSONResponse(ice_config(request.app.state.settings), headers={"Cache-Control": "no-store"})


@router.post("/api/calls/webrtc")
async def webrtc_offer(request: Request) -> JSONResponse:
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: JSON nested too deep
        return _error(400, 'body must be JSON: {"sdp": "...", "type": "offer"}')
    if not isinstance(body, dict) or "sdp" not in body or "type" not in body:
        return _error(400, 'body must be a JSON object with "sdp" and "type"')
    calls = request.app.state.calls
    settings = request.app.state.settings
    share, key = _share(request), client_key(request.scope, settings)
    if share.full(key):  # an offer whose ICE never connects holds a line ~20 s: one client must not take all
        return _error(429, "too many calls from your address at once; please hang up one first",
                      reason="client_share", retry_after_s=RETRY_AFTER_S)
    rtc = await webrtc()
    with share.opening(key):  # counted across the awaits below: parallel offers cannot slip past
        try:
            slot = calls.reserve()
        except CallRefused as e:
            return _error(503, str(e), reason=e.reason, retry_after_s=RETRY_AFTER_S)
        try:
            port, answer = await rtc.WebRtcPort.from_offer(
                body["sdp"], body["type"], call_id=slot.call_id, language=settings.language,
                ice_hosts=rtc.ice_hosts_for(settings.host, settings.public_ip), settings=settings,
            )
        except rtc.OfferError as e:
            slot.release()
            return _error(e.status, str(e))
        except Exception as e:  # never a traceback to the browser
            slot.release()
            log.exception("cannot answer a WebRTC offer")
            return _error(500, f"cannot answer the offer: {type(e).__name__}")
    log.info("webrtc call %s answered (codec %s)", slot.call_id, port.codec or "?")
    tokens = _tokens(request)
    token = tokens.issue(slot.call_id)
    task = calls.start_call(port, slot)
    if task is not None:
        share.add(slot.call_id, key)

        def ended(_t: object, call_id: str = slot.call_id) -> None:
            tokens.forget(call_id)
            share.drop(call_id)

        task.add_done_callback(ended)
    return JSONResponse({**answer, "call_id": slot.call_id, "call_token": token})


@router.post("/api/calls/{call_id}/dtmf")
async def dtmf(call_id: str, request: Request) -> Response:
    if (refused := _refused(request, call_id)) is not None:
        return refused
    session = request.app.state.calls.sessions.get(call_id)
    if session is None:
        return _error(404, f"no active call {call_id}")
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: JSON nested too deep
        body = None
    digits = body.get("digits") if isinstance(body, dict) else None
    press = getattr(session.port, "press", None)
    if not isinstance(digits, str) or press is None:
        return _error(400, 'body must be {"digits": "0-9*#A-D"}')
    err = press(digits)
    if err:
        return _error(400, err)
    return Response(status_code=204)


@router.delete("/api/calls/{call_id}")
async def hangup(call_id: str, request: Request) -> Response:
    if (refused := _refused(request, call_id)) is not None:
        return refused
    if not request.app.state.calls.hangup(call_id, "caller_hangup"):
        return _error(404, f"no active call {call_id}")
    return Response(status_code=204)


@router.get("/api/calls/{call_id}")
async def call_record(call_id: str, request: Request) -> JSONResponse:
    auth = request.headers.get("authorization", "")
    if not (auth and record_token_ok(app_secret(request), call_id, auth)):
        acc = await asyncio.to_thread(current_account, request)
        if acc is None:
            return _error(401, "login required")
        if acc.role not in RECORD_ROLES:
            return _error(403, f"{acc.role} may not read call records; needs supervisor or admin", role=acc.role)
    calls = request.app.state.calls
    session = calls.sessions.get(call_id)
    if session is not None:
        return JSONResponse(public_record(masked(session.record).as_dict()) | {"live": True})
    rec = calls.records.get(call_id)
    if rec is None and calls.parts.store is not None:
        rec = await asyncio.to_thread(calls.parts.store.get, call_id)
    if rec is None:
        return _error(404, f"no call {call_id}")
    return JSONResponse(public_record(masked(rec).as_dict()) | {"live": False})
