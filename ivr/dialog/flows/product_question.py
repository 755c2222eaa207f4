"""Product and policy questions from the operators' knowledge base (kb/); keypad topic menu when speech does not match."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.dialog.flows.base import Flow

if TYPE_CHECKING:
    from ivr.dialog.context import Input
    from ivr.dialog.host import FlowHost
    from ivr.dialog.kb import KbEntry


class ProductQuestionFlow(Flow):
    intent = "product_question"
    skill = "presales"

    def begin(self, m: FlowHost, inp: Input) -> None:
        entry = m.kb.lookup(inp.text) if inp.kind == "text" and inp.text else None
        if entry is not None:
            return self._answer(m, entry)
        if inp.kind == "text":
            m.act("kb_miss")
            m.say("kb.not_found")
            m.say("human.offer_short")
        m.ask_step("topic", "kb.menu.dtmf", expect="digits")

    def _answer(self, m: FlowHost, entry: KbEntry) -> None:
        m.say_text(entry.answer, f"kb.{entry.id}")
        m.act("kb_answer")
        m.ctx.slots["kb_topic"] = entry.id
        m.finish()

    def step_topic(self, m: FlowHost, inp: Input) -> bool:
        entry = m.kb.by_dtmf(inp.digits) if inp.kind == "dtmf" else m.kb.lookup(inp.text)
        if entry is None:
            return False
        self._answer(m, entry)
        return True
