"""One-click shop actions from the agent desktop: the same audited, idempotent shop operations the bot runs.

``POST /api/agent/calls/{call_id}/actions`` (the agent on the live call; JSON body, so the app's CSRF guard
applies: same-origin ``Origin``, ``application/json``):

* ``{"action": "create_return", "reason": "changed_mind"|"quality", "pickup": "tomorrow_am"|"tomorrow_pm"|
  "day_after"}`` or ``{"action": "resend_invoice"}`` without ``"confirm": true`` -> 200 ``{"preview", "action",
  "order_id"}``: what would be done, nothing written (the desktop shows it for confirmation).
* the same with ``"confirm": true`` (and optionally ``"suggestion_id"``, counted as used) -> 200 ``{"done": true,
  "text", "action", "order_id", "rma_id"|"invoice_id"}``.

The order is always the one on the hand-off card that the caller proved (never one named in the body). The write
goes through the shop API (:class:`~ivr.services.shop.api.ShopService`): one transaction with an audit row whose
actor is ``agent:<username>`` (the embedded shop) and an idempotency key ``<call_id>:agent:<action>:<order>:<digest>``,
so a double click or a retry writes once. The call record gets ``extra.agent_actions`` (action, order, result,
agent, time) and an ``agent`` turn whose ``actions`` name the write (``return_created`` / ``invoice_resent``).
Errors: 404 not your live call, 409 no verified order or the shop refuses (``error``: the reason in the desk's
language, ``code``),
503 the shop is unreachable, 400 bad body.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ivr.lang import LanguagePack
from ivr.services.agents import Account
from ivr.web.assist_steps import desk_pack
from ivr.web.auth import DESK

log = logging.getLogger(__name__)
router = APIRouter()
# reason and pickup codes (their labels: ``action.reason.<code>``, ``action.pickup.<code>`` in the pack's desk.yaml);
# a pickup is (days from today, half-day slot); the shop's refusal codes read ``action.refusal.<code>``
REASONS = ("changed_mind", "quality")
PICKUPS = {"tomorrow_am": (1, "AM"), "tomorrow_pm": (1, "PM"), "day_after": (2, "DAY")}


def _error(status: int, message: str, code: str = "") -> JSONResponse:
    return JSONResponse({"error": message, **({"code": code} if code else {})}, status_code=status)


def _key(call_id: str, action: str, order_id: str, *parts: str) -> str:
    digest = hashlib.sha1("|".join(parts).encode()).hexdigest()[:10]
    return f"{call_id}:agent:{action}:{order_id}:{digest}"[:128]


def _acting(shop: Any, acc: Account) -> Any:
    """The shop writing as this agent (the audit row's actor) when it records actors (the embedded shop)."""
    if hasattr(shop, "actor"):
        shop = copy.copy(shop)
        shop.actor = f"agent:{acc.username}"[:32]
    return shop


def _plan(body: dict[str, Any], order_id: str, today: Any,
          pack: LanguagePack) -> tuple[str, dict[str, str]] | JSONResponse:
    """(preview text, write arguments) for the body, or a 400."""
    action = body.get("action")
    if action == "create_return":
        reason, pickup = body.get("reason", "changed_mind"), body.get("pickup", "tomorrow_am")
        if reason not in REASONS or pickup not in PICKUPS:
            return _error(400, f"reason must be one of {list(REASONS)}, pickup one of {list(PICKUPS)}")
        days, half = PICKUPS[pickup]
        slot = f"{(today + timedelta(days=days)).isoformat()} {half}"
        return (pack.desk_text("action.preview.create_return", order_id=order_id,
                               reason=pack.desk_text(f"action.reason.{reason}"),
                               pickup=pack.desk_text(f"action.pickup.{pickup}")),
                {"reason": reason, "pickup": slot})
    if action == "resend_invoice":
        return pack.desk_text("action.preview.resend_invoice", order_id=order_id), {}
    return _error(400, 'action must be "create_return" or "resend_invoice"')


def _write(shop: Any, action: str, order_id: str, args: dict[str, str], key: str,
           pack: LanguagePack) -> dict[str, Any]:
    """The shop write (blocking); the result fields for the answer and the record."""
    if action == "create_return":
        rma = shop.create_return(order_id, "return", args["reason"], args["pickup"], key)
        text = pack.desk_text("action.done.create_return", rma_id=rma.rma_id, pickup_slot=rma.pickup_slot)
        return {"rma_id": rma.rma_id, "text": text, "done_action": "return_created"}
    inv = shop.resend_invoice(order_id, None, key)
    text = pack.desk_text("action.done.resend_invoice", invoice_id=inv.invoice_id)
    return {"invoice_id": inv.invoice_id, "text": text, "done_action": "invoice_resent"}


@router.post("/api/agent/calls/{call_id}/actions")
async def run_action(call_id: str, request: Request, acc: Account = DESK) -> Response:
    from ivr.services.shop import NotAllowed, NotFound, OmsUnavailable, policy_from_settings
    from ivr.web.assist import _assistant, count_use

    pack = desk_pack(request.app.state.settings)

    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        body = None
    if not isinstance(body, dict):
        return _error(400, 'body must be {"action": "create_return"|"resend_invoice", "confirm": true, ...}')
    warm = getattr(request.app.state.calls, "transfer_hook", None)
    bridge = getattr(warm, "bridges", {}).get(call_id)
    if bridge is None or bridge.agent_id != acc.agent_id:
        return _error(404, f"you are not on call {call_id}")
    order = (bridge.context or {}).get("order") or {}
    shop = getattr(warm, "shop", None)
    if not order.get("order_id") or order.get("verified", True) is False or shop is None:
        return _error(409, pack.desk_text("action.no_verified_order"), "no_verified_order")
    order_id = str(order["order_id"])
    policy = policy_from_settings(request.app.state.settings)
    plan = _plan(body, order_id, policy.local_date(datetime.now(UTC)), pack)
    if isinstance(plan, JSONResponse):
        return plan
    preview, args = plan
    action = str(body["action"])
    if body.get("confirm") is not True:
        return JSONResponse({"preview": preview, "action": action, "order_id": order_id})
    key = _key(call_id, action, order_id, *args.values())
    try:
        result = await asyncio.to_thread(_write, _acting(shop, acc), action, order_id, args, key, pack)
    except NotAllowed as e:
        reason = pack.desk_text(f"action.refusal.{e.code}", default=str(e.code))
        return _error(409, pack.desk_text("action.refused", reason=reason), e.code)
    except NotFound:
        return _error(409, pack.desk_text("action.not_found", order_id=order_id), "not_found")
    except OmsUnavailable as e:
        log.warning("agent action %s on %s: shop unavailable: %s", action, order_id, e)
        return _error(503, pack.desk_text("action.unavailable"))
    done = result.pop("done_action")
    entry = {"action": action, "order_id": order_id, "agent": acc.username, "key": key,
             "at": datetime.now(UTC).isoformat(), **{k: v for k, v in result.items() if k != "text"}}
    assistant = _assistant(request)
    rec = assistant._record(call_id)
    if rec is not None:
        done_before = any(a.get("key") == key for a in rec.extra.get("agent_actions", []))
        if not done_before:  # a retry of the same write is logged once
            rec.extra.setdefault("agent_actions", []).append(entry)
            rec.add_turn("agent", speaker="agent", bot_text=pack.desk_text("action.turn", text=result["text"]), actions=[done])
    if isinstance(body.get("suggestion_id"), str):
        count_use(request, call_id, body["suggestion_id"][:64])
    assistant.refresh(call_id)
    log.info("agent %s: %s on order %s (%s)", acc.username, action, order_id, key)
    return JSONResponse({"done": True, "action": action, "order_id": order_id, **result})
