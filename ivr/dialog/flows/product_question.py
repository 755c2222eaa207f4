"""Product and policy questions from the operators' knowledge base (kb/); keypad topic menu when speech does not match."""

from __future__ import annotations

from ivr.dialog.flows.base import Flow


class ProductQuestionFlow(Flow):
    intent = "product_question"
    skill = "presales"

    def begin(self, m, inp) -> None:
        entry = m.kb.lookup(inp.text) if inp.kind == "text" and inp.text else None
        if entry is not None:
            return self._answer(m, entry)
        if inp.kind == "text":
            m.act("kb_miss")
            m.say("kb.not_found")
            m.say("human.offer_short")
        m.ask_step("topic", "kb.menu.dtmf", expect="digits")

    def _answer(self, m, entry) -> None:
        m.say_text(entry.answer, f"kb.{entry.id}")
        m.act("kb_answer")
        m.ctx.slots["kb_topic"] = entry.id
        m.finish()

    def step_topic(self, m, inp) -> bool:
        entry = m.kb.by_dtmf(inp.digits) if inp.kind == "dtmf" else m.kb.lookup(inp.text)
        if entry is None:
            return False
        self._answer(m, entry)
        return True
