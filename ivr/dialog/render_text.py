"""Text-channel rendering of the dialogue's replies (web chat, messaging webhooks): the same flows, other words.

The flows speak; a text channel shows. :func:`render` turns one :class:`BotReply` (and the manager's state) into a
chat message: the voice text without keypad instructions ("press 1" ...), spelled-out numbers back as digits,
quick-reply buttons for the open menu / yes-no / rating question (each button sends its keypad key, so the
flows see exactly the input they already handle) and an order card once the caller is verified.
The wording rules live in the language pack (``ivr/lang/<pack>/text_channel.yaml``), not here.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ivr.dialog.policy import NO_KEY, YES_KEY

if TYPE_CHECKING:
    from ivr.dialog.host import FlowHost
    from ivr.dialog.types import BotReply
    from ivr.services.shop.api import OrderSnapshot

CARD_ACTIONS = frozenset({"order_read", "logistics_read", "refund_read", "caller_verified", "order_selected"})


class TextRules:
    """A language pack's text-channel rules (``text_channel.yaml``)."""

    def __init__(self, data: dict[str, Any], package: str = "") -> None:
        self.replace = [(re.compile(p), r) for p, r in data.get("replace") or []]
        self.cleanup = [(re.compile(p), r) for p, r in data.get("cleanup") or []]
        self.buttons = [re.compile(p) for p in data.get("buttons") or []]
        self.choice = re.compile(data["choice"]) if data.get("choice") else None
        self.keys: dict[str, str] = dict(data.get("keys") or {})
        self.yes, self.no = str(data.get("yes", "yes")), str(data.get("no", "no"))
        offer = data.get("offer") or {}
        self.offer_yes, self.offer_no = str(offer.get("yes", self.yes)), str(offer.get("no", self.no))
        self.rating = str(data.get("rating", "{n}"))
        self.empty_with_buttons = str(data.get("empty_with_buttons", ""))
        self.menu_prompt = str(data.get("menu_prompt", "menu.dtmf"))
        callback = data.get("callback") or {}
        self.callback_phone = str(callback.get("phone", "{ticket}"))
        self.callback_no_phone = str(callback.get("no_phone", "{ticket}"))
        self.callback_failed = str(callback.get("failed", ""))
        self.spoken_digits: dict[str, str] = {}
        # the pack's writer of spelled-out numbers (money, dates, counts): ``numbers.hook`` names its module
        numbers = data.get("numbers") or {}
        self.numbers: Callable[[str, Iterable[str]], str] | None = None
        if numbers.get("hook") and package:
            self.numbers = importlib.import_module(f"{package}.{numbers['hook']}").writer(numbers)

    def text(self, voice: str, keep: Iterable[str] = ()) -> str:
        """The voice text as it reads in a chat: no key instructions, spelled numbers as digits (not in ``keep``:
        names as they are, e.g. the order's product names)."""
        out = voice
        for pat, rep in self.replace:
            out = pat.sub(rep, out)
        for pat, rep in self.cleanup:
            out = pat.sub(rep, out)
        if self.spoken_digits:
            chars = "".join(self.spoken_digits)
            out = re.sub(f"[{chars}]{{4,}}", lambda m: "".join(self.spoken_digits[c] for c in m.group(0)), out)
        if self.numbers is not None:
            out = self.numbers(out, keep)
        return out.strip()

    def label(self, voice: str) -> str:
        """A quick-reply label taken from the voice text, its numbers as the chat text writes them."""
        return self.numbers(voice, ()) if self.numbers is not None else voice

    def keypad_buttons(self, voice: str) -> list[dict[str, str]]:
        """Quick replies named in a voice prompt ("for orders press 1" -> {"label": "<orders>", "key": "1"})."""
        seen: dict[str, dict[str, str]] = {}
        for pat in self.buttons:
            for m in pat.finditer(voice):
                key = self.keys.get(m.group("key"), m.group("key"))
                label = self.label(m.group("label").strip("，。；：、 "))
                if label and key not in seen:
                    seen[key] = {"label": label, "key": key}
        return list(seen.values())


@cache
def rules_for(pack_dir: Path, say_digit_map: tuple[tuple[str, str], ...] = ()) -> TextRules:
    path = pack_dir / "text_channel.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    rules = TextRules(data or {}, f"ivr.lang.{pack_dir.name}")
    rules.spoken_digits = {spoken: d for d, spoken in say_digit_map if len(spoken) == 1}
    return rules


def rules(manager: FlowHost) -> TextRules:
    pack = manager.pack
    return rules_for(pack.dir, tuple((d, pack.say_digits(d)) for d in "0123456789"))


def _buttons(manager: FlowHost, reply: BotReply, r: TextRules) -> list[dict[str, str]]:
    if reply.end_call or reply.transfer is not None:
        return []
    ctx = manager.ctx
    if ctx.state == "offer":  # a personal offer: take it or leave it, in the offer's own words
        return [{"label": r.offer_yes, "key": YES_KEY}, {"label": r.offer_no, "key": NO_KEY}]
    if reply.expect == "yesno" or ctx.expect == "yesno":
        return [{"label": r.yes, "key": YES_KEY}, {"label": r.no, "key": NO_KEY}]
    if reply.expect == "rating":
        return [{"label": r.rating.format(n=n), "key": str(n)} for n in range(5, 0, -1)]
    voice = "".join(s.text for s in ctx.question)
    found = r.keypad_buttons(voice)
    if r.choice is not None and (m := r.choice.search(voice)):
        found = [{"label": r.label(m.group("first")), "key": "1"}, {"label": r.label(m.group("second")), "key": "2"}]
    help_id = ctx.question_dtmf or (r.menu_prompt if ctx.state == "main_menu" else None)
    if not found and help_id and help_id in manager.pack.prompts:
        try:
            found = r.keypad_buttons(manager.pack.prompt(help_id))
        except KeyError:  # a help prompt with fields: no buttons
            found = []
    return found


def _status_text(manager: FlowHost, order: OrderSnapshot) -> str:
    pid = f"status.{order.status}"
    try:  # the pack directly: the manager's own text() would rotate its prompt variants
        if order.status == "delivered" and order.shipment and order.shipment.delivered_at:
            return manager.pack.prompt(pid, date=manager.date(order.shipment.delivered_at))
        return manager.pack.prompt(pid) if pid in manager.pack.prompts else order.status
    except KeyError:
        return order.status


def order_card(manager: FlowHost) -> dict[str, Any] | None:
    """The verified order in play as a structured card (None before verification)."""
    ctx = manager.ctx
    o = ctx.order
    if o is None or not ctx.verification.verified:
        return None
    card: dict[str, Any] = {
        "type": "order", "order_id": o.order_id, "status": o.status,
        "status_text": _status_text(manager, o),
        "created": manager.local_date(o.created_at).isoformat(), "total": f"{o.total_cents / 100:.2f}",
        "items": [{"name": i.name, "quantity": i.quantity} for i in o.items],
    }
    sh = o.shipment
    if sh is not None:
        latest = sh.events[-1] if sh.events else None
        card["shipment"] = {"carrier": sh.carrier, "tracking_no": sh.tracking_no,
                            "eta": sh.eta.isoformat() if sh.eta else None,
                            "latest": f"{latest.location} {latest.description}".strip() if latest else None}
    if o.refunds:
        card["refunds"] = [{"refund_id": f.refund_id, "amount": f"{f.amount_cents / 100:.2f}", "status": f.status}
                           for f in o.refunds]
    return card


def render(manager: FlowHost, reply: BotReply) -> dict[str, Any]:
    """One bot message for a text channel: {"role", "text", "quick_replies", "cards", "state", "intent", ...}."""
    r = rules(manager)
    orders = (manager.ctx.order, manager.ctx.pending_order)
    names = [i.name for o in orders if o is not None for i in o.items]  # product names stay as the shop wrote them
    text = r.text(reply.text, names)
    quick = _buttons(manager, reply, r)
    if not text:  # a silent turn (keys collected) or a question made only of keys: show the open question
        text = r.text("".join(s.text for s in manager.ctx.question), names) or (r.empty_with_buttons if quick else "")
    cards = []
    if CARD_ACTIONS.intersection(reply.actions) and (card := order_card(manager)) is not None:
        cards.append(card)
    return {"role": "bot", "text": text, "quick_replies": quick, "cards": cards, "state": reply.state,
            "intent": reply.intent, "actions": list(reply.actions), "end": bool(reply.end_call),
            "transfer": None if reply.transfer is None else {"reason": reply.transfer.reason,
                                                                "priority": reply.transfer.priority}}
