"""The agent desktop's side of web chats handed to agents (``ivr.channels.agent_leg``; login: agent or supervisor).

* ``POST /api/agent/chats/{offer_id}/accept`` ``{}`` -> ``{"call_id", "channel"}``: the agent takes the chat
  offered (the desktop's ``offer`` event has ``context.channel`` ``webchat``); 409 when it is no longer offered
  to this agent or the offer is a call (calls are accepted with audio, ``/api/agent/offers/{id}/accept``).
* ``POST /api/agent/chats/{call_id}/messages`` ``{"text": "..."}`` -> 204: the customer sees it at once;
  404 when it is not this agent's live chat, 400 bad body (1..2000 characters).

Everything else is the call's API: the ``transcript`` events carry the customer's messages, the hang-up
(``/api/agent/calls/{id}/hangup``) ends the chat, wrap-up and the context card work as for calls.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ivr.channels.agent_leg import LIVE_CHANNELS, MAX_AGENT_TEXT, ChatAgents
from ivr.services.agents import Account
from ivr.services.agents.desk import DeskError
from ivr.web.auth import DESK

router = APIRouter()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _agents(request: Request) -> ChatAgents | None:
    hub = getattr(request.app.state, "chat_hub", None)
    return getattr(hub, "agents", None)


@router.post("/api/agent/chats/{offer_id}/accept")
def accept_chat(offer_id: str, request: Request, acc: Account = DESK) -> Response:
    agents = _agents(request)
    if agents is None:
        return _error(503, "chats are not handed to agents in this service")
    desk = agents.desk
    w = next((w for w in desk.queue if w.offer_id == offer_id and w.offered_to == acc.agent_id), None)
    if w is None:
        return _error(409, "this chat is no longer offered to you")
    if w.handoff.get("channel") not in LIVE_CHANNELS:
        return _error(409, "this offer is a call: accept it with audio")
    try:
        desk.accept(acc.agent_id, offer_id, None)
    except DeskError as e:
        return _error(e.status, str(e))
    return JSONResponse({"call_id": w.call_id, "channel": w.handoff.get("channel")})


@router.post("/api/agent/chats/{call_id}/messages")
async def agent_message(call_id: str, request: Request, acc: Account = DESK) -> Response:
    agents = _agents(request)
    if agents is None:
        return _error(503, "chats are not handed to agents in this service")
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        body = None
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_AGENT_TEXT:
        return _error(400, f'body must be {{"text": "..."}} (1..{MAX_AGENT_TEXT} characters)')
    from ivr.channels.session import ChatClosed

    try:
        ok = await asyncio.to_thread(agents.reply, call_id, acc.agent_id, text.strip())
    except ChatClosed:
        ok = False
    if not ok:
        return _error(404, f"you are not in chat {call_id}")
    return Response(status_code=204)
