"""The web chat: the page ``/chat`` and its JSON + WebSocket API (docs/chat.md).

* ``POST /api/chat/sessions`` ``{}`` -> 201 ``{"session_id", "chat_token", "messages"}`` (the greeting);
  503 when ``chat_max_sessions`` conversations are open; 429 when this client address already holds a tenth of
  them (at least 2), so one anonymous client cannot take every chat (:mod:`ivr.web.perclient`).
* ``POST /api/chat/sessions/{id}/messages`` ``{"text": "..."}`` or ``{"key": "1", "label": "查订单"}`` (a quick
  reply) -> ``{"messages": [customer, bot, ...], "closed"}``; 400 bad body, 410 the conversation has ended.
* ``GET /api/chat/sessions/{id}`` -> ``{"session_id", "channel", "closed", "messages"}``;
  ``DELETE /api/chat/sessions/{id}`` -> 204 (the customer leaves; the record is saved).
  These need the ``chat_token`` in ``X-Chat-Token``: 401 without it, 403 wrong (or no such conversation).
* ``WS /api/chat/sessions/{id}/ws``: first frame ``{"type": "auth", "token"}``; then the server sends
  ``{"type": "history", "messages", "closed"}``, every new message as ``{"type": "message", "message"}`` and
  ``{"type": "closed", "reason"}``; the client sends ``{"type": "message", "text"}`` or ``{..., "key", "label"}``.
  A cross-site ``Origin`` is refused (close code 4403), a missing/wrong token 4401/4403.
State-changing requests also pass the app's CSRF guard (JSON body, same-origin ``Origin``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ivr.channels.session import ChatClosed, ChatHub, ChatSession
from ivr.channels.webhook import is_text
from ivr.lang import get_pack
from ivr.web.agent_chat import router as agent_chat_router
from ivr.web.perclient import ClientShare, client_key
from ivr.web.security import same_origin

router = APIRouter()
router.include_router(agent_chat_router)  # the agent desktop's side of chats handed to agents
TOKEN_HEADER = "X-Chat-Token"
CHANNEL = "webchat"
MAX_TEXT = 500
AUTH_TIMEOUT_S = 10.0
SWEEP_S = 60.0


def chat_hub(app: Any) -> ChatHub:
    """The app's hub of text conversations (built on first use over the call manager's shop and record store)."""
    hub = getattr(app.state, "chat_hub", None)
    if hub is None:
        from ivr.web.auth import service_secret

        settings = app.state.settings
        calls = app.state.calls
        if calls is not None:
            shop, store = calls.parts.shop, calls.parts.store
        else:  # the routes without the call manager (unit tests of the API)
            from ivr.services.migrate import ensure_schema
            from ivr.services.records import RecordStore
            from ivr.services.shop import open_shop

            ensure_schema(settings.database_url)
            shop, store = open_shop(settings), RecordStore(settings.database_url)
        hub = app.state.chat_hub = ChatHub(shop=shop, store=store, secret=service_secret(settings),
                                           language=settings.language, idle_timeout_s=settings.chat_idle_timeout_s,
                                           max_sessions=settings.chat_max_sessions)
    return hub


async def startup(app: Any) -> None:
    """Close idle conversations (and save their records) once a minute."""

    async def sweep() -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            hub = getattr(app.state, "chat_hub", None)
            if hub is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(hub.sweep)

    app.state.chat_sweeper = asyncio.create_task(sweep())
    desk = getattr(app.state.calls, "desk", None) if app.state.calls is not None else None
    if desk is not None:  # web chats that ask for a person join the agents' queue (ivr.channels.agent_leg)
        from ivr.channels.agent_leg import ChatAgents

        hub = chat_hub(app)
        hub.agents = ChatAgents(desk, app.state.calls.transfer_hook, asyncio.get_running_loop(), hub.get)


async def shutdown(app: Any) -> None:
    task = getattr(app.state, "chat_sweeper", None)
    if task is not None:
        task.cancel()
    hub = getattr(app.state, "chat_hub", None)
    if hub is not None:
        if hub.agents is not None:
            await hub.agents.close()
        await asyncio.to_thread(hub.close_all)


def web_text(app: Any, text_id: str, **fields: object) -> str:
    """A visitor-facing answer in the service's language (the pack's ``desk.yaml``, ``web.*``)."""
    return get_pack(app.state.settings.language).desk_text(text_id, **fields)


def _error(status: int, message: str) -> JSONResponse:
    headers = {"Retry-After": "30"} if status in (429, 503) else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def parse_message(body: Any) -> tuple[dict[str, str] | None, str]:
    """(kwargs for ChatSession.send, "") or (None, why the body is not a message)."""
    if not isinstance(body, dict):
        return None, 'body must be {"text": "..."} or {"key": "1", "label": "..."}'
    key, text = body.get("key"), body.get("text")
    if key is not None:
        if not isinstance(key, str) or len(key) != 1 or key not in "0123456789*#":
            return None, "key must be one of 0-9, * or #"
        label = str(body.get("label") or "")[:40]
        if not is_text(label):
            return None, "label must be text (no lone surrogates)"
        return {"key": key, "label": label}, ""
    if not isinstance(text, str) or not text.strip():
        return None, "text must be a non-empty string"
    if not is_text(text):
        return None, "text must be text (no lone surrogates)"
    if len(text) > MAX_TEXT:
        return None, f"text longer than {MAX_TEXT} characters"
    return {"text": text.strip()}, ""


async def _session(request: Request, session_id: str) -> tuple[ChatSession | None, JSONResponse | None]:
    status, s = chat_hub(request.app).check(session_id, request.headers.get(TOKEN_HEADER))
    if status == 401:
        return None, _error(401, f"chat token required ({TOKEN_HEADER})")
    if status:
        return None, _error(403, "wrong chat token, or no such conversation")
    return s, None


@router.get("/chat", response_class=HTMLResponse, include_in_schema=False)
def chat_page(request: Request) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(request, "chat.html", {})


def _share(request: Request, hub: ChatHub) -> ClientShare:
    share = getattr(request.app.state, "chat_clients", None)
    if share is None:
        share = request.app.state.chat_clients = ClientShare(hub.max_sessions, 10)
    return share


@router.post("/api/chat/sessions")
async def create_session(request: Request) -> JSONResponse:
    hub = chat_hub(request.app)
    share, key = _share(request, hub), client_key(request.scope, request.app.state.settings)
    if share.full(key, alive=lambda sid: (s := hub.get(sid)) is not None and not s.closed):
        return _error(429, web_text(request.app, "web.chat.too_many"))
    try:
        with share.opening(key):  # counted while the greeting is made: parallel requests cannot slip past
            s = await asyncio.to_thread(hub.create, CHANNEL)
    except OverflowError as e:
        return _error(503, web_text(request.app, "web.busy", reason=e))
    share.add(s.session_id, key)
    return JSONResponse({"session_id": s.session_id, "chat_token": s.token, "messages": s.messages},
                        status_code=201, headers={"Cache-Control": "no-store",  # Location: a cluster's HAProxy
                                                  "Location": f"/api/chat/sessions/{s.session_id}"})  # sticks by it


@router.get("/api/chat/sessions/{session_id}")
async def get_session(session_id: str, request: Request) -> JSONResponse:
    s, refused = await _session(request, session_id)
    if refused is not None:
        return refused
    return JSONResponse(s.public(), headers={"Cache-Control": "no-store"})


@router.post("/api/chat/sessions/{session_id}/messages")
async def post_message(session_id: str, request: Request) -> JSONResponse:
    s, refused = await _session(request, session_id)
    if refused is not None:
        return refused
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        body = None
    kwargs, why = parse_message(body)
    if kwargs is None:
        return _error(400, why)
    try:
        new = await asyncio.to_thread(s.send, **kwargs)
    except ChatClosed:
        return _error(410, web_text(request.app, "web.chat.ended"))
    return JSONResponse({"messages": new, "closed": s.closed})


@router.delete("/api/chat/sessions/{session_id}")
async def close_session(session_id: str, request: Request) -> Response:
    s, refused = await _session(request, session_id)
    if refused is not None:
        return refused
    await asyncio.to_thread(s.close)
    return Response(status_code=204)


@router.websocket("/api/chat/sessions/{session_id}/ws")
async def chat_ws(ws: WebSocket, session_id: str) -> None:
    origin = ws.headers.get("origin")
    if origin is not None and not same_origin(ws.scope, ws.app.state.settings, origin):
        await ws.close(code=4403, reason="cross-site origin")
        return
    await ws.accept()
    try:
        first = await asyncio.wait_for(_frame(ws), AUTH_TIMEOUT_S)
    except (TimeoutError, WebSocketDisconnect):
        first = None
    if first is None:
        await _close(ws, 4401, "auth frame required")
        return
    token = first.get("token") if isinstance(first, dict) and first.get("type") == "auth" else None
    status, s = chat_hub(ws.app).check(session_id, token if isinstance(token, str) else None)
    if s is None:
        await _close(ws, 4401 if status == 401 else 4403, "wrong chat token, or no such conversation")
        return
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def listen(msg: dict[str, Any]) -> None:
        event = msg if msg.get("type") == "closed" else {"type": "message", "message": msg}
        loop.call_soon_threadsafe(queue.put_nowait, event)

    s.listeners.append(listen)
    pusher = asyncio.create_task(_push(ws, queue))
    try:
        await ws.send_json({"type": "history", "messages": list(s.messages), "closed": s.closed})
        while True:
            frame = await _frame(ws)
            kwargs, why = parse_message(frame if isinstance(frame, dict) and frame.get("type") == "message"
                                        else None)
            if kwargs is None:
                await ws.send_json({"type": "error", "error": why})
                continue
            try:
                await asyncio.to_thread(s.send, **kwargs)
            except ChatClosed:
                await ws.send_json({"type": "error", "error": web_text(ws.app, "web.chat.ended")})
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        with contextlib.suppress(ValueError):
            s.listeners.remove(listen)
        pusher.cancel()


async def _frame(ws: WebSocket) -> Any:
    """The next frame's JSON (None for binary or malformed frames); raises WebSocketDisconnect."""
    msg = await ws.receive()
    if msg["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(msg.get("code", 1000))
    try:
        return json.loads(msg["text"]) if msg.get("text") is not None else None
    except (ValueError, RecursionError):
        return None


async def _push(ws: WebSocket, queue: asyncio.Queue[dict[str, Any]]) -> None:
    with contextlib.suppress(Exception):
        while True:
            await ws.send_json(await queue.get())


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await ws.close(code=code, reason=reason)
