"""Invoice: resend the invoice, or change its title (and tax id) after confirmation."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ivr.dialog.flows.base import Flow

if TYPE_CHECKING:
    from ivr.dialog.context import Input
    from ivr.dialog.host import FlowHost


class InvoiceFlow(Flow):
    intent = "invoice"
    skill = "finance"

    def begin(self, m: FlowHost, inp: Input) -> None:
        what = m.options.match("invoice_what", inp.text) if inp.kind == "text" else None
        if what:
            m.ctx.flow_data["what"] = what
        m.with_order("check", inp)

    def check(self, m: FlowHost) -> None:
        if m.ctx.order.status in ("unpaid", "cancelled"):
            return self.not_allowed(m, "no_invoice")
        what = m.ctx.flow_data.get("what")
        if what == "resend":
            m.confirm("resend_confirm", "invoice.resend_confirm")
        elif what == "title":
            m.ask_step("title", "invoice.title_ask", nlu_expected="free_text")
        else:
            m.ask_step("what", "invoice.ask_choice", expect="digits")

    def step_what(self, m: FlowHost, inp: Input) -> bool:
        what = m.options.match("invoice_what", inp.text, inp.digits if inp.kind == "dtmf" else "")
        if not what:
            return False
        m.ctx.flow_data["what"] = what
        self.check(m)
        return True

    def step_resend_confirm(self, m: FlowHost, inp: Input) -> bool:
        return self.confirm_write(m, inp, self._resend, "invoice.aborted")

    def _resend(self, m: FlowHost) -> None:
        m.shop_call(m.shop.resend_invoice, m.ctx.order.order_id, None, m.key("resend"))
        m.act("invoice_resent")
        m.say("invoice.resent")
        m.finish()

    def step_title(self, m: FlowHost, inp: Input) -> bool:
        if inp.kind != "text" or len(inp.text.replace(" ", "")) < 2:
            return False
        title = inp.text.replace(" ", "")
        m.ctx.flow_data["title"] = title
        if any(w in title for w in m.options.words("personal_invoice_title")):
            m.ctx.flow_data["tax_id"] = ""
            m.confirm("title_confirm", "invoice.title_confirm", title=title)
        else:
            m.ask_step("taxid", "invoice.taxid_ask", expect="digits", nlu_expected="digits")
        return True

    def step_taxid(self, m: FlowHost, inp: Input) -> bool:
        if inp.kind == "dtmf":
            tax_id = inp.digits.rstrip("#")
        else:
            tax_id = re.sub(r"[^0-9A-Za-z]", "", m.pack.parse_digits(inp.text) or inp.text).upper()
        if tax_id and len(tax_id) not in (15, 18, 20):
            m.say("invoice.bad_tax_id")
            m.ask_step("taxid", "invoice.taxid_ask", expect="digits", nlu_expected="digits")
            return True
        m.ctx.flow_data["tax_id"] = tax_id
        m.confirm("title_confirm", "invoice.title_confirm", title=m.ctx.flow_data["title"])
        return True

    def step_title_confirm(self, m: FlowHost, inp: Input) -> bool:
        return self.confirm_write(m, inp, self._change_title, "invoice.aborted")

    def _change_title(self, m: FlowHost) -> None:
        fd = m.ctx.flow_data
        m.shop_call(m.shop.change_invoice_title, m.ctx.order.order_id, fd["title"], fd["tax_id"],
                    m.key("title", fd["title"], fd["tax_id"]))
        m.act("invoice_title_changed")
        m.say("invoice.title_done")
        m.finish()
