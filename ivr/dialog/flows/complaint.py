"""Complaint: collect what went wrong, read a short summary back, confirm, create a ticket and read its number."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.dialog.flows.base import Flow
from ivr.privacy import mask_text

if TYPE_CHECKING:
    from ivr.dialog.context import Input
    from ivr.dialog.host import FlowHost

MIN_DETAIL_CHARS = 8  # an utterance this long already says what the complaint is about


class ComplaintFlow(Flow):
    intent = "complaint"
    skill = "complaints"

    def begin(self, m: FlowHost, inp: Input) -> None:
        text = inp.text.replace(" ", "") if inp.kind == "text" else ""
        if len(text) >= MIN_DETAIL_CHARS:
            return self._confirm(m, text)
        m.ask_step("detail", "complaint.ask", nlu_expected="free_text")

    def step_detail(self, m: FlowHost, inp: Input) -> bool:
        if inp.kind != "text" or len(inp.text.replace(" ", "")) < 2:
            return False
        self._confirm(m, inp.text.replace(" ", ""))
        return True

    def _confirm(self, m: FlowHost, text: str) -> None:
        summary = text[: m.policy.summary_chars]
        m.ctx.flow_data["summary"] = summary
        m.confirm("confirm", "complaint.confirm", summary=summary)

    def step_confirm(self, m: FlowHost, inp: Input) -> bool:
        return self.confirm_write(m, inp, self._ticket, "complaint.aborted")

    def _ticket(self, m: FlowHost) -> None:
        summary = m.ctx.flow_data["summary"]
        order = m.ctx.order
        context = {"call_id": m.ctx.call_id, "intents": list(m.ctx.intents), "mood": m.ctx.mood_level}
        ticket = m.shop_call(m.shop.create_ticket, "complaint", mask_text(summary), m.ctx.caller_id or
                             (order.phone if order else ""), order.order_id if order else None, context,
                             m.key("complaint", summary))
        m.ctx.slots["ticket_id"] = ticket.ticket_id
        m.act("ticket_created")
        m.say("complaint.done", ticket_id=m.digits(ticket.ticket_id))
        m.no_barge_in()
        m.finish()
