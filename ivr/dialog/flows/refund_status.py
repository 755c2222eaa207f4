"""Refund status: amount, state, method and expected arrival of the order's latest refund."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.dialog.flows.base import Flow
from ivr.dialog.flows.return_request import OPEN_RMA

if TYPE_CHECKING:
    from ivr.dialog.host import FlowHost


class RefundStatusFlow(Flow):
    intent = "refund_status"
    skill = "after_sales"
    prefer = ("refunded", "returned", "cancelled")

    def answer(self, m: FlowHost) -> None:
        o = m.ctx.order
        m.act("refund_read")
        if not o.refunds:
            rma = next((r for r in o.returns if r.status in OPEN_RMA), None)
            if rma is not None:
                m.say("return.existing", rma_id=m.digits(rma.rma_id), status=m.text(f"rma.{rma.status}"))
            else:
                m.say("refund.none")
            return m.finish()
        r = max(o.refunds, key=lambda x: x.created_at)
        method = f"refund.method.{r.method}"
        m.say("refund.status", amount=m.amount(r.amount_cents), status=m.text(f"refund.{r.status}"),
              method=m.text(method if method in m.pack.prompts else "refund.method.other"))
        if r.expected_by and r.status in ("pending", "processing"):
            m.say("refund.expected", date=m.date(r.expected_by))
        m.finish()
