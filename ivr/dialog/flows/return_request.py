"""Return: eligibility (no-reason return within the window after delivery; quality problems longer), reason, pickup slot,
confirmation, RMA number read back digit by digit. ``ExchangeFlow`` (exchange.py) reuses it."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from ivr.dialog.flows.base import BEFORE_SHIPMENT, FINAL, IN_DELIVERY, Flow

if TYPE_CHECKING:
    from ivr.dialog.context import Input
    from ivr.dialog.host import FlowHost

OPEN_RMA = ("requested", "approved", "picked_up", "received")
QUALITY = ("quality", "damaged", "wrong_item")
# NLU reason codes -> the shop's reason codes (ivr.services.shop.rules)
SHOP_REASON = {"not_as_described": "not_as_expected", "price": "changed_mind", "late": "changed_mind"}


class ReturnFlow(Flow):
    intent = "return_request"
    kind = "return"
    skill = "after_sales"
    prefer = ("delivered",)

    def begin(self, m: FlowHost, inp: Input) -> None:
        reason = self._reason(m, inp)
        if reason:
            m.ctx.flow_data["reason"] = reason
        m.with_order("check", inp)

    def _reason(self, m: FlowHost, inp: Input) -> str | None:
        if inp is None:
            return None
        if inp.kind == "dtmf":
            return m.options.match("return_reason", dtmf=inp.digits) if m.ctx.state.endswith(".reason") else None
        mine = m.options.match("return_reason", inp.text)
        if mine:
            return mine
        slot = inp.slots.get("return_reason")
        return str(slot.get("code") if isinstance(slot, dict) else slot) if slot else None

    def check(self, m: FlowHost) -> None:
        o = m.ctx.order
        existing = next((r for r in o.returns if r.status in OPEN_RMA), None)
        if existing is not None:
            m.say("return.existing", rma_id=m.digits(existing.rma_id), status=m.text(f"rma.{existing.status}"))
            m.act("return_exists")
            return m.finish()
        if o.status in BEFORE_SHIPMENT:
            m.say("return.not_delivered")
            m.say("return.not_shipped_hint")
            m.act("not_eligible")
            return m.finish()
        if o.status in IN_DELIVERY:
            m.say("return.not_delivered")
            m.say("return.in_transit_hint")
            m.act("not_eligible")
            return m.finish()
        if o.status in FINAL:
            m.say("return.not_allowed")
            m.act("not_eligible")
            return m.finish()
        if self._days_since_delivery(m) > m.policy.quality_return_days:
            return self._window_closed(m)
        if m.ctx.flow_data.get("reason"):
            return self._after_reason(m)
        m.ask_step("reason", f"{self.kind}.ask_reason", dtmf_help="return.ask_reason.dtmf",
                   nlu_expected="return_reason")

    def _days_since_delivery(self, m: FlowHost) -> int:
        sh = m.ctx.order.shipment
        if not sh or not sh.delivered_at:
            return 0
        return (m.today() - m.local_date(sh.delivered_at)).days

    def _window_closed(self, m: FlowHost) -> None:
        m.act("not_eligible")
        m.say("return.window_closed")
        m.offer_human("policy")

    def _after_reason(self, m: FlowHost) -> None:
        reason = m.ctx.flow_data["reason"]
        o = m.ctx.order
        facts = o.extra or {}
        seven_day = facts.get("seven_day_return", True)
        if reason not in QUALITY:
            if self._days_since_delivery(m) > m.policy.return_days:
                return self._window_closed(m)
            if not seven_day:
                m.act("not_eligible")
                m.say("return.category_excluded")
                return m.offer_human("policy")
        m.ask_step("slot", "return.ask_slot", dtmf_help="return.ask_slot.dtmf")

    def step_reason(self, m: FlowHost, inp: Input) -> bool:
        reason = self._reason(m, inp)
        if not reason:
            return False
        m.ctx.flow_data["reason"] = reason
        m.ctx.slots["return_reason"] = reason
        self._after_reason(m)
        return True

    def step_slot(self, m: FlowHost, inp: Input) -> bool:
        slot = m.options.match("pickup_slot", inp.text, inp.digits if inp.kind == "dtmf" else "")
        if not slot:
            return False
        m.ctx.flow_data["slot"] = slot
        fd = m.ctx.flow_data
        m.confirm("confirm", f"{self.kind}.confirm", order_id=m.digits(m.ctx.order.order_id),
                  reason=m.label("reason", fd["reason"]), slot=m.label("pickup", slot))
        return True

    def _pickup_value(self, m: FlowHost, slot: str) -> str:
        """What the shop stores: a date and half-day, e.g. '2025-11-26 AM'."""
        days, half = {"tomorrow_am": (1, "AM"), "tomorrow_pm": (1, "PM"), "day_after": (2, "DAY")}.get(slot, (1, "DAY"))
        return f"{(m.today() + timedelta(days=days)).isoformat()} {half}"

    def step_confirm(self, m: FlowHost, inp: Input) -> bool:
        return self.confirm_write(m, inp, self._create, "return.aborted")

    def _create(self, m: FlowHost) -> None:
        fd = m.ctx.flow_data
        order_id = m.ctx.order.order_id
        reason = SHOP_REASON.get(fd["reason"], fd["reason"])
        pickup = self._pickup_value(m, fd["slot"])
        rma = m.shop_call(m.shop.create_return, order_id, self.kind, reason, pickup,
                          m.key(self.kind, reason, pickup))
        m.ctx.slots["rma_id"] = rma.rma_id
        m.say(f"{self.kind}.created", rma_id=m.digits(rma.rma_id), slot=m.label("pickup", fd["slot"]))
        m.no_barge_in()
        m.act(f"{self.kind}_created")
        m.refresh_order()
        m.finish()
