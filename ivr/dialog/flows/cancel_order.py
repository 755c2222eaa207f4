"""Cancel an order: only before shipment; confirmation, then the shop cancels (and refunds a paid order)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.dialog.flows.base import BEFORE_SHIPMENT, FINAL, Flow

if TYPE_CHECKING:
    from ivr.dialog.context import Input
    from ivr.dialog.host import FlowHost


class CancelOrderFlow(Flow):
    intent = "cancel_order"
    prefer = ("paid", "unpaid")

    def answer(self, m: FlowHost) -> None:
        o = m.ctx.order
        if o.status == "cancelled":
            return self.not_allowed(m, "already_cancelled")
        if o.status in FINAL:
            return self.not_allowed(m, "already_refunded")
        if o.status not in BEFORE_SHIPMENT:
            return self.not_allowed(m, "already_shipped")
        m.confirm("confirm", "cancel.confirm", order_id=m.digits(o.order_id))

    def step_confirm(self, m: FlowHost, inp: Input) -> bool:
        return self.confirm_write(m, inp, self._cancel, "cancel.aborted")

    def _cancel(self, m: FlowHost) -> None:
        o = m.ctx.order
        was_paid = o.status == "paid"
        m.ctx.order = m.shop_call(m.shop.cancel_order, o.order_id, "caller_request", m.key("cancel"))
        m.act("order_cancelled")
        if was_paid:
            m.say("cancel.done", amount=m.amount(o.total_cents))
        else:
            m.say("cancel.done_unpaid")
        m.finish()
