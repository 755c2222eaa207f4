"""Price protection and promotions: current promotions need no order; price protection needs a verified order."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from ivr.dialog.flows.base import FINAL, Flow

if TYPE_CHECKING:
    from ivr.dialog.context import Input
    from ivr.dialog.host import FlowHost

MAX_PROMOS_READ = 3


class PricePromotionFlow(Flow):
    intent = "price_promotion"
    prefer = ("delivered", "in_transit", "shipped", "paid")

    def begin(self, m: FlowHost, inp: Input) -> None:
        what = m.options.match("price_what", inp.text) if inp.kind == "text" else None
        entry = m.kb.lookup(inp.text) if inp.kind == "text" and what is None else None
        if entry is not None:  # e.g. shipping fees: a policy question, not a promotion
            m.say_text(entry.answer, f"kb.{entry.id}")
            m.act("kb_answer")
            return m.finish()
        self._go(m, what, inp)

    def _go(self, m: FlowHost, what: str, inp: Input | None = None) -> None:
        if what == "promo":
            self._promos(m)
        elif what == "protect":
            m.with_order("protect", inp)
        else:
            m.ask_step("what", "price.ask_choice", expect="digits")

    def step_what(self, m: FlowHost, inp: Input) -> bool:
        what = m.options.match("price_what", inp.text, inp.digits if inp.kind == "dtmf" else "")
        if not what:
            return False
        self._go(m, what, inp)
        return True

    def _promos(self, m: FlowHost) -> None:
        promos = m.shop_call(m.shop.current_promotions)
        m.act("promotions_read")
        if not promos:
            m.say("price.no_promos")
        else:
            items = []
            for p in promos[:MAX_PROMOS_READ]:
                ends = p.get("ends")
                ends_text = m.date(date.fromisoformat(ends)) if isinstance(ends, str) and ends else ""
                items.append(m.text("price.promo_item", title=p.get("title", ""), detail=p.get("detail", ""),
                                    ends=ends_text))
            m.say("price.promos", promos=m.join(items))
        m.finish()

    def protect(self, m: FlowHost) -> None:
        o = m.ctx.order
        if o.status in FINAL or o.status == "unpaid":
            return self.not_allowed(m, "price_protect_window_closed" if o.status != "unpaid" else "not_paid")
        m.confirm("protect_confirm", "price.protect_confirm", order_id=m.digits(o.order_id))

    def step_protect_confirm(self, m: FlowHost, inp: Input) -> bool:
        return self.confirm_write(m, inp, self._protect, "price.aborted")

    def _protect(self, m: FlowHost) -> None:
        refund = m.shop_call(m.shop.request_price_protection, m.ctx.order.order_id, m.key("protect"))
        if refund is None:
            m.act("price_protect_none")
            m.say("price.protect_none")
        else:
            m.act("price_protected")
            m.say("price.protect_refund", amount=m.amount(refund.amount_cents))
        m.refresh_order()
        m.finish()
