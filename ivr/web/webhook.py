"""Messaging webhooks: ``POST /api/webhook/{adapter}`` (docs/chat.md).

The body is the platform's JSON, signed (:mod:`ivr.channels.webhook`). The answer is the bot's reply in the
adapter's format, signed the same way (``X-Ivr-Timestamp`` / ``X-Ivr-Signature``), status 200. Refusals are JSON
``{"error", "code"}``: 404 ``unknown_adapter`` (no such adapter or no secret for it), 401 ``unsigned`` /
``bad_signature`` / ``bad_timestamp`` / ``stale_timestamp``, 400 ``bad_payload``, 409 ``replayed`` (the message
id was already accepted), 503 ``busy``. Nothing is stored for a refused message. One conversation per
(adapter, ``conversation_id``) while it is open; it is recorded with channel ``messaging``.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ivr.channels.session import ChatClosed
from ivr.channels.webhook import WebhookRefused, get_adapter, signed_headers, verify
from ivr.web.chat import chat_hub, parse_message, web_text

router = APIRouter()
CHANNEL = "messaging"


def _refuse(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "code": code}, status_code=status)


def _seen(app: Any) -> Any:
    from ivr.services.channels.replay import SeenMessages
    from ivr.web.stores import app_store

    hours = app.state.settings.webhook_retention_h
    return app_store(app.state, "webhook_seen", lambda url: SeenMessages(url, timedelta(hours=hours)))


def _handle(app: Any, adapter_name: str, inbound: Any, kwargs: dict[str, str]) -> tuple[list[dict], bool]:
    """The customer message into its thread's conversation (a new one greets first); (bot messages, closed)."""
    hub = chat_hub(app)
    key = (adapter_name, inbound.conversation_id)
    s, new = hub.thread(key, CHANNEL)
    greeting = list(s.messages) if new else []
    try:
        sent = s.send(**kwargs)
    except ChatClosed:  # ended between lookup and send (idle timeout): start again
        s, _ = hub.thread(key, CHANNEL)
        greeting, sent = list(s.messages), s.send(**kwargs)
    return greeting + sent, s.closed


@router.post("/api/webhook/{adapter_name}")
async def webhook(adapter_name: str, request: Request) -> Response:
    settings = request.app.state.settings
    secret = settings.webhook_secrets.get(adapter_name)
    adapter = get_adapter(adapter_name) if secret else None
    if adapter is None or not secret:
        return _refuse(404, "unknown_adapter",
                       web_text(request.app, "web.webhook.unknown_adapter", adapter=repr(adapter_name)))
    body = await request.body()
    try:
        verify(secret, request.headers, body, max_skew_s=settings.webhook_max_skew_s)
    except WebhookRefused as e:
        return _refuse(e.status, e.code, web_text(request.app, f"web.webhook.{e.code}", **e.fields))
    try:
        payload = json.loads(body or b"null")
        if not isinstance(payload, dict):
            raise ValueError("body must be a JSON object")
        inbound = adapter.parse(payload)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        return _refuse(400, "bad_payload", web_text(request.app, "web.webhook.bad_payload", why=e))
    kwargs, why = parse_message({"key": inbound.key, "label": inbound.label} if inbound.key
                                else {"text": inbound.text})
    if kwargs is None:
        return _refuse(400, "bad_payload", web_text(request.app, "web.webhook.bad_payload", why=why))
    claimed = await asyncio.to_thread(_seen(request.app).claim, adapter_name, inbound.message_id)
    if not claimed:
        return _refuse(409, "replayed",
                       web_text(request.app, "web.webhook.replayed", message_id=repr(inbound.message_id)))
    try:
        messages, closed = await asyncio.to_thread(_handle, request.app, adapter_name, inbound, kwargs)
    except OverflowError as e:
        return _refuse(503, "busy", web_text(request.app, "web.busy", reason=e))
    out = json.dumps(adapter.render(inbound, messages, closed), ensure_ascii=False).encode()
    return Response(out, status_code=200, headers=signed_headers(secret, out), media_type="application/json")
