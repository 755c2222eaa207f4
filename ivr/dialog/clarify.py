"""When the NLU is unsure, ask; when the caller named two needs, offer the second after the first.

Clarifying question: an utterance whose NLU result carries two candidate tasks (``clarify_of``) starts no flow;
the bot asks "do you want A or B?" (prompt ``clarify.ask``, state ``clarify``). The answer picks one by its
words (the need label, or "the latter": lexicon ``clarify_answers``), by its own intent, or by key 1 / 2; "neither" goes back to the open menu question. A wrong guess
therefore never starts a flow, let alone a write (flows confirm every write as well).

Second need: "track my parcel, and by the way an invoice" starts the first task and remembers the second; when the first task
finishes, instead of "anything else?" the bot offers the second (state ``second_need``, yes/no).

The manager calls :func:`route` first in its main-menu handler and :func:`offer_second` in ``finish``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ivr.dialog.context import Input
from ivr.dialog.nlu import clarify_of, second_need_of
from ivr.dialog.policy import TASK_INTENTS
from ivr.dialog.types import NluResult

if TYPE_CHECKING:
    from ivr.dialog.host import FlowHost

MAX_CLARIFY_TRIES = 2  # unclear answers to the clarifying question before the open menu question again


@dataclass
class ClarifyState:
    """Per call: the open clarifying question and a second need waiting to be offered."""

    candidates: list[str] = field(default_factory=list)
    origin: Input | None = None  # the utterance that was unclear (its slots serve the chosen flow)
    tries: int = 0
    second: str | None = None
    offered: str | None = None


def state_of(m: FlowHost) -> ClarifyState:
    st = m.__dict__.get("_clarify_state")
    if st is None:
        st = m.__dict__["_clarify_state"] = ClarifyState()
    return st


def unsure(inp: Input) -> bool:
    """The NLU would rather ask than act on this utterance."""
    return inp.kind == "text" and inp.nlu is not None and bool(clarify_of(inp.nlu))


def route(m: FlowHost, inp: Input) -> bool:
    """Handle the turn here (an answer to our question, or a new unclear request). False: the menu handles it."""
    st = state_of(m)
    if m.ctx.state == "clarify" and st.candidates:
        return _answer(m, st, inp)
    if m.ctx.state == "second_need" and st.offered:
        return _second_answer(m, st, inp)
    if inp.kind != "text" or inp.nlu is None:
        return False
    candidates = clarify_of(inp.nlu)
    if candidates:
        ask(m, candidates, inp)
        return True
    second = second_need_of(inp.nlu)
    if second and inp.intent in TASK_INTENTS and inp.confidence >= m.policy.min_intent_confidence:
        st.second = second
    return False


def ask(m: FlowHost, candidates: list[str], origin: Input) -> None:
    st = state_of(m)
    st.candidates, st.origin, st.tries = list(candidates[:2]), origin, 0
    m.act("clarify")
    _ask(m, st, "clarify.ask")


def _ask(m: FlowHost, st: ClarifyState, prompt_id: str) -> None:
    a, b = st.candidates
    m.ask("clarify", prompt_id, expect="speech", first=need_label(m, a), second=need_label(m, b))


def need_label(m: FlowHost, intent: str) -> str:
    return m.text(f"need.{intent}")


def _answer(m: FlowHost, st: ClarifyState, inp: Input) -> bool:
    a, b = st.candidates
    pick = _pick(m, st, inp)
    if pick == "":  # neither
        st.candidates, st.origin = [], None
        m.act("clarify_neither")
        m.ask("main_menu", "menu.ask", dtmf_help="menu.dtmf")
        return True
    if pick is None:
        if inp.kind == "text" and inp.intent in TASK_INTENTS and not unsure(inp) \
                and inp.confidence >= m.policy.min_intent_confidence:
            st.candidates, st.origin = [], None
            return False  # a clear, different request: the menu starts it
        st.tries += 1
        if st.tries >= MAX_CLARIFY_TRIES:
            st.candidates, st.origin = [], None
            m.ask("main_menu", "menu.hint", dtmf_help="menu.dtmf")
        else:
            _ask(m, st, "clarify.again")
        return True
    origin = st.origin or inp
    st.candidates, st.origin = [], None
    m.act("clarified")
    chosen = NluResult(text=origin.raw or origin.text, intent=pick, confidence=1.0,
                       slots=dict(origin.slots) if origin.kind == "text" else {})
    m.start_flow(pick, Input("text", origin.text, "", chosen, origin.raw))
    return True


def _pick(m: FlowHost, st: ClarifyState, inp: Input) -> str | None:
    """The chosen candidate, "" for neither, None when the answer is unclear."""
    a, b = st.candidates
    if inp.kind == "dtmf":
        return {"1": a, "2": b}.get(inp.key)
    if inp.kind != "text":
        return None
    lex = m.pack.lexicon.get("clarify_answers", {}) or {}
    compact = inp.text.replace(" ", "")
    if any(w in compact for w in lex.get("neither", [])):
        return ""
    if any(w in compact for w in lex.get("first", [])):
        return a
    if any(w in compact for w in lex.get("second", [])):
        return b
    la, lb = need_label(m, a), need_label(m, b)
    if (la in compact) != (lb in compact):
        return a if la in compact else b
    expl = inp.nlu.explanation if inp.nlu else {}
    if expl.get("context"):  # a reading borrowed from our own question names nothing (laughter)
        return "" if inp.intent == "deny" else None
    if inp.intent in (a, b):
        return inp.intent
    scores = expl.get("scores") or {}
    sa, sb = scores.get(a, 0.0), scores.get(b, 0.0)
    if max(sa, sb) >= 0.25 and abs(sa - sb) >= 0.1:
        return a if sa > sb else b
    if inp.intent == "deny":
        return ""
    return None


def offer_second(m: FlowHost) -> bool:
    """After a finished task: offer the second need of the caller's utterance, once. True when asked."""
    st = state_of(m)
    need, st.second = st.second, None
    if not need or need not in TASK_INTENTS:
        return False
    st.offered = need
    m.act("second_need_offered")
    m.ask("second_need", "second_need.offer", expect="yesno", dtmf_help="yesno.reask", nlu_expected="yesno",
          need=need_label(m, need))
    return True


def _second_answer(m: FlowHost, st: ClarifyState, inp: Input) -> bool:
    need, st.offered = st.offered, None
    yes = m.yes_no(inp)
    if yes is None and inp.kind == "text" and inp.intent == need:
        yes = True
    if yes:
        m.act("second_need_accepted")
        chosen = NluResult(text=inp.raw or inp.text, intent=need, confidence=1.0,
                           slots=dict(inp.slots) if inp.kind == "text" else {})
        m.start_flow(need, Input("text", inp.text, "", chosen, inp.raw))
        return True
    if yes is False:
        m.ask("main_menu", "anything_else", dtmf_help="menu.dtmf")
        return True
    return False  # something else: the menu handles it as a new request
