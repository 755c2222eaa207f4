"""Order status: items, amount, state (and delivery date) of the verified order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.dialog.flows.base import Flow

if TYPE_CHECKING:
    from ivr.dialog.host import FlowHost
    from ivr.services.shop.api import OrderSnapshot


def status_text(m: FlowHost, order: OrderSnapshot) -> str:
    """The order's state as a spoken phrase."""
    if order.status == "delivered":
        sh = order.shipment
        if sh and sh.delivered_at:
            return m.text("status.delivered", date=m.date(sh.delivered_at))
        return m.text("status.delivered_nodate")
    return m.text(f"status.{order.status}")


def items_text(m: FlowHost, order: OrderSnapshot) -> str:
    items = order.items
    if not items:
        return ""
    if len(items) == 1:
        return m.text("status.items_one", name=items[0].name, quantity=m.number(items[0].quantity))
    return m.text("status.items_many", name=items[0].name, count=m.number(sum(i.quantity for i in items)))


class OrderStatusFlow(Flow):
    intent = "order_status"

    def answer(self, m: FlowHost) -> None:
        o = m.ctx.order
        m.say("status.summary", order_id=m.digits(o.order_id), items=items_text(m, o), amount=m.amount(o.total_cents),
              status=status_text(m, o))
        sh = o.shipment
        if o.status in ("shipped", "in_transit") and sh and sh.eta:
            m.say("logistics.eta", date=m.date(sh.eta))
        m.act("order_read")
        m.finish()
