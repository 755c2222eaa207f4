"""Agent assist: suggestions on the agent desktop during a human call, driven by the live transcript.

* ``kb``: the knowledge-base answer (the dialogue's own ``kb/`` entries and the shop's custom ones) for each caller
  line that matches one, newest first.
* ``order``: the facts of the order on the hand-off card (only an order the caller proved), read fresh from the
  shop: status, carrier and tracking number, latest tracking event, the no-reason and quality return windows (open
  or closed, until when), the amount still refundable (total minus refunds not rejected), an open return and the
  invoice state; ``actions``: the one-click shop actions it allows (:mod:`ivr.web.assist_actions`).
* ``flow``: the next step of the bot's flow for the caller's newest request (:mod:`ivr.web.assist_steps`).

Caller lines are the hand-off transcript (what the caller told the bot) followed by the bridge's live transcript.
A chat handed to an agent is served the same way: its bridge (:class:`ivr.channels.agent_leg.ChatBridge`) is in the
same ``bridges`` and the customer's messages are its ``caller`` lines; the counts go into the chat's record.

A watcher (started with the service) looks at every live bridge every ``POLL_S``; when a call's suggestions change
it sends ``{"type": "assist", "call_id", "suggestions"}`` on that agent's desktop event stream
(``/api/agent/events``) and counts them in the call record (``extra.assist``: ``shown`` ids, ``used`` ids).

* ``GET /api/agent/calls/{call_id}/assist`` -> ``{"call_id", "suggestions"}`` (the agent on the call, or a
  supervisor).
* ``POST /api/agent/calls/{call_id}/assist/{suggestion_id}/used`` -> 204: the agent used it (counted once);
  ``.../ignored`` -> 204: the agent dismissed it (``extra.assist.dismissed``). A suggestion shown and not used
  counts as ignored (:mod:`ivr.services.records.assist_stats`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ivr.lang import LanguagePack, get_pack
from ivr.services.agents import Account
from ivr.web.assist_steps import desk_pack, flow_suggestion, order_actions
from ivr.web.auth import DESK

log = logging.getLogger(__name__)
router = APIRouter()
POLL_S = 0.25


def _money(pack: LanguagePack, cents: int) -> str:
    return pack.desk_text("money", amount=f"{cents / 100:.2f}")


def order_facts(shop: Any, policy: Any, order_id: str, today: Any = None,
                pack: LanguagePack | None = None) -> dict[str, Any] | None:
    """The order suggestion (blocking: a shop read); None if the shop does not know the order. Texts from
    ``pack`` (default: the configured language's)."""
    from ivr.dialog.flows.return_request import OPEN_RMA  # the bot's own notion of an open return
    from ivr.services.shop.rules import return_deadline

    o = shop.get_order(order_id)
    if o is None:
        return None
    pack = pack or desk_pack()
    t = pack.desk_text
    today = today or policy.local_date(datetime.now(UTC))
    sh = o.shipment
    lines = [t("order.status", status=t(f"status.{o.status}", default=str(o.status)))]
    if sh is not None:
        lines.append(t("order.shipment", carrier=sh.carrier, tracking_no=sh.tracking_no)
                     + (t("order.shipment_event", event=sh.latest.description) if sh.latest else ""))
    delivered = sh.delivered_at if sh is not None else None
    windows: dict[str, Any] = {}
    if delivered is None:
        lines.append(t("order.window_not_started"))
    else:
        for key, quality in (("no_reason", False), ("quality", True)):
            end = return_deadline(policy, delivered, quality)
            windows[key] = {"until": end.isoformat(), "open": today <= end}
            lines.append(t("order.window", label=t(f"order.window.{key}"), until=t("date", date=end),
                           state=t("order.window.open" if today <= end else "order.window.closed")))
    refunded = sum(r.amount_cents for r in o.refunds if r.status != "rejected")
    refundable = max(0, o.total_cents - refunded)
    lines.append(t("order.refundable", refundable=_money(pack, refundable), total=_money(pack, o.total_cents),
                   refunded=_money(pack, refunded)))
    open_rma = next((r.rma_id for r in o.returns if r.status in OPEN_RMA), None)
    if open_rma:
        lines.append(t("order.open_return", rma_id=open_rma))
    facts = {"id": "order", "kind": "order", "title": t("order.title", order_id=o.order_id),
             "text": t("order.sep").join(lines),
             "order_id": o.order_id, "status": o.status, "tracking_no": sh.tracking_no if sh else None,
             "return_windows": windows, "refundable_cents": refundable, "open_return": open_rma,
             "invoice_status": o.invoice.status if o.invoice is not None else "none"}
    facts["actions"] = order_actions(facts)
    return facts


def kb_suggestions(kb: Any, transcript: list[dict[str, Any]],
                   pack: LanguagePack | None = None) -> list[dict[str, Any]]:
    """One suggestion per knowledge-base entry a caller line matches, newest line first (titles from ``pack``,
    default: the configured language's)."""
    pack = pack or desk_pack()
    out: dict[str, dict[str, Any]] = {}
    for line in reversed(transcript):
        if line.get("who") != "caller":
            continue
        e = kb.lookup(str(line.get("text", "")))
        if e is not None and f"kb:{e.id}" not in out:
            topic = e.keywords[0] if e.keywords else e.id
            out[f"kb:{e.id}"] = {"id": f"kb:{e.id}", "kind": "kb", "title": pack.desk_text("kb.title", topic=topic), "text": e.answer,
                                 "heard": line.get("text", "")}
    return list(out.values())


class Assistant:
    """Suggestions per live call (see the module docstring); one per app, on the event loop."""

    def __init__(self, app_state: Any) -> None:
        self.state = app_state
        self._kb: Any = None
        self._orders: dict[str, dict[str, Any] | None] = {}  # call_id -> order suggestion (read once per call)
        self._seen: dict[str, tuple[int, tuple[str, ...]]] = {}  # call_id -> (transcript length, published ids)
        self.current: dict[str, list[dict[str, Any]]] = {}

    def kb(self) -> Any:
        if self._kb is None:
            from ivr.dialog.kb import KnowledgeBase

            self._kb = KnowledgeBase(get_pack(self.state.settings.language).dir / "kb")
        return self._kb

    def _warm(self) -> Any:
        return getattr(getattr(self.state, "calls", None), "transfer_hook", None)

    async def _order(self, call_id: str, context: dict[str, Any]) -> dict[str, Any] | None:
        if call_id not in self._orders:
            order = context.get("order") or {}
            shop = getattr(self._warm(), "shop", None)
            facts = None
            if order.get("order_id") and order.get("verified", True) is not False and shop is not None:
                from ivr.services.shop import policy_from_settings

                try:
                    facts = await asyncio.to_thread(order_facts, shop, policy_from_settings(self.state.settings),
                                                    order["order_id"], pack=desk_pack(self.state.settings))
                except Exception as e:  # the shop being down must not break the call
                    log.warning("assist: order %s unreadable: %s", order.get("order_id"), e)
            self._orders[call_id] = facts
        return self._orders[call_id]

    def refresh(self, call_id: str) -> None:
        """Read the order again and republish (after an agent's action changed it)."""
        self._orders.pop(call_id, None)
        self._seen.pop(call_id, None)

    async def suggestions(self, call_id: str, bridge: Any) -> list[dict[str, Any]]:
        context = bridge.context or {}
        order = await self._order(call_id, context)
        lines = [t for t in context.get("transcript") or [] if isinstance(t, dict)] + list(bridge.transcript)

        def text_part() -> list[dict[str, Any]]:
            from ivr.dialog.nlu import get_nlu

            pack = desk_pack(self.state.settings)
            flow = flow_suggestion(get_nlu(self.state.settings.language), lines, order, pack)
            return kb_suggestions(self.kb(), lines, pack) + ([flow] if flow else [])

        return await asyncio.to_thread(text_part) + ([order] if order else [])

    async def tick(self) -> None:
        """Look at every live bridge once; publish changed suggestions to its agent."""
        warm = self._warm()
        bridges = dict(getattr(warm, "bridges", {}) or {})
        for call_id in [c for c in self._seen if c not in bridges]:
            self._seen.pop(call_id, None)
            self._orders.pop(call_id, None)
            self.current.pop(call_id, None)
        for call_id, bridge in bridges.items():
            n = len(bridge.transcript)
            if call_id in self._seen and self._seen[call_id][0] == n:
                continue
            sugg = await self.suggestions(call_id, bridge)
            ids = tuple(f"{s['id']}|{s['text']}|{','.join(s.get('actions', []))}" for s in sugg)
            if call_id in self._seen and self._seen[call_id][1] == ids:
                self._seen[call_id] = (n, ids)
                continue
            self._seen[call_id] = (n, ids)
            self.current[call_id] = sugg
            warm.desk.publish(bridge.agent_id, {"type": "assist", "call_id": call_id, "suggestions": sugg})
            rec = self._record(call_id)
            if rec is not None:
                shown = _counts(rec)["shown"]
                shown.extend(s["id"] for s in sugg if s["id"] not in shown)

    def _record(self, call_id: str) -> Any:
        """The live record of a call, or of a chat handed to an agent (the chat hub's session)."""
        session = getattr(self.state.calls, "sessions", {}).get(call_id)
        if session is None:
            hub = getattr(self.state, "chat_hub", None)
            chat = hub.get(call_id) if hub is not None else None
            return getattr(getattr(chat, "call", None), "record", None)
        return getattr(session, "record", None)

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception as e:  # assist is a help, never a reason to stop
                log.error("agent assist failed: %s", e)
            await asyncio.sleep(POLL_S)


def _assistant(request: Request) -> Assistant:
    st = request.app.state
    if getattr(st, "assistant", None) is None:
        st.assistant = Assistant(st)
    return st.assistant


def _on_call(request: Request, acc: Account, call_id: str) -> Any:
    """The live bridge of ``call_id`` if ``acc`` may see it (its agent, or a supervisor), else None."""
    warm = getattr(request.app.state.calls, "transfer_hook", None)
    bridge = getattr(warm, "bridges", {}).get(call_id)
    if bridge is None or (acc.role != "supervisor" and bridge.agent_id != acc.agent_id):
        return None
    return bridge


@router.get("/api/agent/calls/{call_id}/assist")
async def assist_api(call_id: str, request: Request, acc: Account = DESK) -> Response:
    bridge = _on_call(request, acc, call_id)
    if bridge is None:
        return JSONResponse({"error": f"you are not on call {call_id}"}, status_code=404)
    return JSONResponse({"call_id": call_id, "suggestions": await _assistant(request).suggestions(call_id, bridge)})


def _counts(rec: Any) -> dict[str, list[str]]:
    counts = rec.extra.setdefault("assist", {})
    for k in ("shown", "used", "dismissed"):
        counts.setdefault(k, [])
    return counts


def count_use(request: Request, call_id: str, suggestion_id: str, what: str = "used") -> None:
    """Count a suggestion as ``used`` or ``dismissed`` in the call's record (once each)."""
    rec = _assistant(request)._record(call_id)
    if rec is not None:
        ids = _counts(rec)[what]
        if suggestion_id not in ids:
            ids.append(suggestion_id)


@router.post("/api/agent/calls/{call_id}/assist/{suggestion_id}/{what}")
def assist_used(call_id: str, suggestion_id: str, what: str, request: Request, acc: Account = DESK) -> Response:
    if what not in ("used", "ignored"):
        return JSONResponse({"error": "use .../used or .../ignored"}, status_code=404)
    if _on_call(request, acc, call_id) is None:
        return JSONResponse({"error": f"you are not on call {call_id}"}, status_code=404)
    count_use(request, call_id, suggestion_id[:64], "used" if what == "used" else "dismissed")
    return Response(status_code=204)


async def startup(app: Any) -> None:
    if getattr(app.state.calls, "desk", None) is None:
        return
    if getattr(app.state, "assistant", None) is None:
        app.state.assistant = Assistant(app.state)
    app.state.assist_task = asyncio.create_task(app.state.assistant.run(), name="agent-assist")


async def shutdown(app: Any) -> None:
    task = getattr(app.state, "assist_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
