"""The shape of a task flow. A flow is a small object without per-call state (that lives in ``m.ctx``):
``begin`` starts it, ``on_step`` handles caller input in one of its steps ('<intent>.<step>' states), and
continuations named in ``m.with_order(...)`` run once the order is known and the caller verified."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ivr.services.shop.api import NotAllowed

if TYPE_CHECKING:
    from ivr.dialog.context import Input
    from ivr.dialog.host import FlowHost

BEFORE_SHIPMENT = ("unpaid", "paid")
IN_DELIVERY = ("shipped", "in_transit")
FINAL = ("cancelled", "refunded", "returned")


class Flow:
    intent: str = ""
    skill: str = "general"  # which human team gets a transfer from this flow
    prefer: tuple[str, ...] = ()  # order statuses this task is usually about (picks the caller's recent order)

    def begin(self, m: FlowHost, inp: Input) -> None:
        m.with_order("answer", inp)

    def answer(self, m: FlowHost) -> None:
        raise NotImplementedError

    def on_step(self, m: FlowHost, step: str, inp: Input) -> bool:
        """Handle input in ``step``; False when the input does not answer the step (manager reprompts)."""
        handler = getattr(self, f"step_{step}", None)
        return bool(handler(m, inp)) if handler else False

    def confirm_write(self, m: FlowHost, inp: Input, write: Callable[[FlowHost], None], aborted_prompt: str) -> bool:
        """Common yes/no handling of a confirmation step: yes -> ``write(m)``, no -> polite abort."""
        yn = m.yes_no(inp)
        if yn is None:
            return False
        if not yn:
            m.act("cancelled_by_caller")
            m.say(aborted_prompt)
            m.finish()
            return True
        try:
            write(m)
        except NotAllowed as e:
            self.not_allowed(m, e.code)
        return True

    def not_allowed(self, m: FlowHost, code: str) -> None:
        """Explain a refused write (shop's NotAllowed code) and close the task."""
        m.act(f"not_allowed:{code}")
        m.say(NOT_ALLOWED_PROMPTS.get(code, "not_allowed.generic"))
        m.finish()


NOT_ALLOWED_PROMPTS = {
    "already_shipped": "cancel.already_shipped",
    "already_cancelled": "cancel.already_cancelled",
    "not_delivered": "return.not_delivered",
    "return_window_closed": "return.window_closed",
    "category_not_returnable": "return.category_excluded",
    "return_exists": "return.exists_short",
    "already_refunded": "not_allowed.final",
    "already_returned": "not_allowed.final",
    "invalid_address": "address.too_short",
    "invalid_tax_id": "invoice.bad_tax_id",
    "price_protect_window_closed": "price.protect_not_allowed",
    "price_protect_not_supported": "price.protect_not_supported",
    "not_paid": "not_allowed.not_paid",
    "no_invoice": "invoice.not_allowed",
}
