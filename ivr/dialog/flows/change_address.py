"""Change the address or delivery slot: only before shipment. The new address is free speech, read back for confirmation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.dialog.flows.base import BEFORE_SHIPMENT, Flow

if TYPE_CHECKING:
    from ivr.dialog.context import Input
    from ivr.dialog.host import FlowHost

MIN_ADDRESS_CHARS = 6


class ChangeAddressFlow(Flow):
    intent = "change_address"
    prefer = ("paid", "unpaid")

    def begin(self, m: FlowHost, inp: Input) -> None:
        what = m.options.match("change_what", inp.text) if inp.kind == "text" else None
        if what:
            m.ctx.flow_data["what"] = what
        m.with_order("check", inp)

    def check(self, m: FlowHost) -> None:
        o = m.ctx.order
        if o.status not in BEFORE_SHIPMENT:
            m.act("not_eligible")
            m.say("address.already_shipped" if o.status in ("shipped", "in_transit", "delivered")
                  else "address.not_allowed")
            return m.finish()
        self._ask_what(m)

    def _ask_what(self, m: FlowHost) -> None:
        what = m.ctx.flow_data.get("what")
        if what == "address":
            m.ask_step("address", "address.ask_new", nlu_expected="address")
        elif what == "slot":
            m.ask_step("dslot", "dslot.ask", dtmf_help="dslot.ask.dtmf")
        else:
            m.ask_step("what", "change.ask_choice", expect="digits")

    def step_what(self, m: FlowHost, inp: Input) -> bool:
        what = m.options.match("change_what", inp.text, inp.digits if inp.kind == "dtmf" else "")
        if not what:
            return False
        m.ctx.flow_data["what"] = what
        self._ask_what(m)
        return True

    def step_address(self, m: FlowHost, inp: Input) -> bool:
        if inp.kind != "text":
            return False
        address = inp.text.replace(" ", "")
        if len(address) < MIN_ADDRESS_CHARS:
            m.say("address.too_short")
            m.ask_step("address", "address.ask_new", nlu_expected="address")
            return True
        m.ctx.flow_data["address"] = address
        m.confirm("address_confirm", "address.confirm", address=address)
        return True

    def step_address_confirm(self, m: FlowHost, inp: Input) -> bool:
        return self.confirm_write(m, inp, self._write_address, "address.aborted")

    def _write_address(self, m: FlowHost) -> None:
        address = m.ctx.flow_data["address"]
        m.ctx.order = m.shop_call(m.shop.change_address, m.ctx.order.order_id, address, m.key("address", address))
        m.act("address_changed")
        m.say("address.done")
        m.finish()

    def step_dslot(self, m: FlowHost, inp: Input) -> bool:
        slot = m.options.match("delivery_slot", inp.text, inp.digits if inp.kind == "dtmf" else "")
        if not slot:
            return False
        m.ctx.flow_data["slot"] = slot
        m.confirm("dslot_confirm", "dslot.confirm", slot=m.label("dslot", slot))
        return True

    def step_dslot_confirm(self, m: FlowHost, inp: Input) -> bool:
        return self.confirm_write(m, inp, self._write_slot, "address.aborted")

    def _write_slot(self, m: FlowHost) -> None:
        slot = m.ctx.flow_data["slot"]
        m.ctx.order = m.shop_call(m.shop.change_delivery_slot, m.ctx.order.order_id, slot, m.key("slot", slot))
        m.act("delivery_slot_changed")
        m.say("dslot.done", slot=m.label("dslot", slot))
        m.finish()
