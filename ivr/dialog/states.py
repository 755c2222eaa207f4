"""The system states of the dialogue (the main menu, asking for the order, verification, offering a person, the
order-system outage choice, the satisfaction rating, the answer to a personal offer) and ``STATES``, the table the manager dispatches through.
Task steps ('<flow>.<step>') belong to the flows; any state not in the table is handled as the main menu."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from ivr.dialog import clarify, gate, offers
from ivr.dialog.flows import FLOWS
from ivr.dialog.policy import HUMAN_KEY, MENU_KEYS, REPEAT_KEY, TASK_INTENTS

if TYPE_CHECKING:
    from ivr.dialog.context import Input
    from ivr.dialog.host import SystemHost

log = logging.getLogger(__name__)


def digits_only(s: str) -> str:
    return re.sub(r"\D", "", s or "")


def main_menu(m: SystemHost, inp: Input) -> None:
    if clarify.route(m, inp):  # an unsure request is asked about; answers to that question and offers
        return
    if inp.kind == "dtmf":
        intent = MENU_KEYS.get(inp.digits) or MENU_KEYS.get(inp.digits.rstrip("#"))
        if intent:
            return m.start_flow(intent, inp)
        m.say("menu.invalid_key")
        return m.ask("main_menu", "menu.dtmf", expect="digits", dtmf_help="menu.dtmf")
    intent = inp.intent
    if intent in TASK_INTENTS and inp.confidence >= m.policy.min_intent_confidence:
        return m.start_flow(intent, inp)
    if m.spoken_order_id(inp):
        return m.start_flow("order_status", inp)
    if intent == "greeting":
        return m.ask("main_menu", "menu.ask", dtmf_help="menu.dtmf")
    if intent == "thanks":
        m.say("thanks.reply")
        if m.ctx.served:
            return m.end_sequence()
        return m.ask("main_menu", "anything_else", dtmf_help="menu.dtmf")
    if intent == "deny" and m.ctx.served:
        return m.end_sequence()
    if intent == "affirm" and m.ctx.served:
        return m.ask("main_menu", "please_go_on", dtmf_help="menu.dtmf")
    if intent in ("wait", "dont_know"):
        return m.ask("main_menu", "wait.ok" if intent == "wait" else "menu.hint", dtmf_help="menu.dtmf")
    entry = m.kb.lookup(inp.text) if inp.text else None
    if entry is not None:
        return m.start_flow("product_question", inp)
    m.no_match()


def ask_order(m: SystemHost, inp: Input) -> None:
    order_id = digits_only(inp.digits) if inp.kind == "dtmf" else m.spoken_order_id(inp, expected=True)
    if not order_id and inp.kind == "text":
        if inp.intent in TASK_INTENTS and inp.intent != m.ctx.flow and m.digression(inp):
            return
        if inp.intent == "dont_know":
            return m.offer_human("order_unknown")
        if inp.intent == "deny":
            m.say("ok")
            return m.finish_without_service()
    if not order_id:
        return m.no_match(first="order.no_digits")
    m.lookup_order(order_id)


def offer_human(m: SystemHost, inp: Input) -> None:
    yn = m.yes_no(inp)
    if yn is None:
        if m.digression(inp):
            return
        return m.no_match()
    if yn:
        return m.transfer(m.ctx.transfer_reason or "human_request")
    m.ctx.transfer_reason = None
    if m.ctx.verification.failed:
        return m.end_sequence()
    m.say("ok")
    m.finish_without_service()


def oms_choice(m: SystemHost, inp: Input) -> None:
    choice = m.options.match("oms_choice", inp.text, inp.digits if inp.kind == "dtmf" else "")
    if choice is None and m.yes_no(inp) is True:
        choice = "human"
    if choice == "human":
        return m.transfer("oms_down")
    if choice == "callback":
        m.act("callback_requested")
        try:
            m.shop.create_ticket("callback", "callback after order system outage", m.ctx.caller_id,
                                 m.ctx.order.order_id if m.ctx.order else None,
                                 {"call_id": m.ctx.call_id}, f"{m.ctx.call_id}:callback")
            m.act("ticket_created")
        except Exception:  # the outage may persist: the hand-off record still carries the request
            log.warning("callback ticket could not be stored")
        m.say("oms.callback_done")
        m.outcome = "callback"
        return m.end_call()
    m.no_match()


def csat(m: SystemHost, inp: Input) -> None:
    rating = None
    if inp.kind == "dtmf":
        rating = int(inp.key) if inp.key in "12345" and inp.key else None
    else:
        raw = inp.slots.get("rating")
        if raw is None:
            raw = m.pack.parse_number(inp.text.replace(" ", ""))
        try:
            rating = int(raw) if raw is not None else None
        except (TypeError, ValueError):
            rating = None
        if rating is not None and not 1 <= rating <= 5:
            rating = None
    if rating is not None:
        m.csat = rating
        m.act("csat_recorded")
        if m.feedback:
            m.say("feedback.noted")
        m.say("csat.thanks")
        m.outcome = m.outcome or "resolved"
        return m.end_call()
    if m.digression(inp):
        return
    m.ctx.csat_retries += 1
    if m.ctx.csat_retries <= 1:
        return m.ask("csat", "csat.ask", expect="rating", nlu_expected="rating")
    m.goodbye("resolved")


def global_command(m: SystemHost, inp: Input) -> bool:
    """Commands heard in any state: repeat, a person, the main menu, goodbye. True when one was acted on."""
    intent, key = inp.intent, inp.key
    collecting = m.ctx.expect == "digits" and inp.kind == "dtmf" and len(inp.digits.rstrip("#")) > 1
    if inp.digits == REPEAT_KEY or intent == "repeat":
        m.out.intent = "repeat"
        last = m.ctx.last_reply
        if last is None or not last.segments:
            m.ask("main_menu", "repeat.nothing")
        else:
            m.out.segments.extend(last.segments)
            m.out.question_index = m.ctx.last_question_index
            m.out.expect = m.ctx.expect
        return True
    if m.ctx.state == "oms_choice" and intent == "human_agent" and \
            m.options.match("oms_choice", inp.text) == "callback":
        return False  # "call me back" mentions a human but picks the callback option
    human_key = key == HUMAN_KEY and not collecting and (m.ctx.expect != "digits" or m.ctx.state == "main_menu")
    if intent == "human_agent" or human_key:  # '0' is a person at the keypad menu too, as the menu says
        m.out.intent = "human_agent"
        m.ctx.intents.append("human_agent")
        m.transfer("human_request")
        return True
    if intent == "main_menu":
        m.ctx.flow, m.ctx.flow_data, m.ctx.after_order = None, {}, None
        m.say("menu.back")
        m.ask("main_menu", "menu.ask" if m.ctx.asr_available else "menu.dtmf", dtmf_help="menu.dtmf")
        return True
    if intent == "goodbye" and m.ctx.state != "csat":
        m.end_sequence()
        return True
    return False


def flow_step(m: SystemHost, inp: Input) -> None:
    """A task step (state '<flow>.<step>'): the flow handles it, else a digression or the no-match policy."""
    flow = FLOWS[m.ctx.flow or ""]
    step = m.ctx.state.split(".", 1)[1]
    if m.ctx.expect == "yesno" and not m.ctx.question_heard and m.yes_no(inp) is not None:
        # the caller answered before hearing the question: ask it again instead of acting
        m.ctx.question_heard = True
        m.say("confirm.again")
        m.reask()
        m.act("confirmation_repeated")
        return
    if flow.on_step(m, step, inp):
        if inp.intent in TASK_INTENTS:
            m.out.intent = flow.intent  # the answer to this step, whatever topic its words suggested
        return
    if m.digression(inp):
        return
    m.no_match()


# state -> its handler (task steps '<flow>.<step>' go to the flow; any other state is the main menu)
STATES: dict[str, Callable[[SystemHost, Input], None]] = {
    "main_menu": main_menu,
    "ask_order": ask_order,
    "verify": gate.on_answer,
    "offer_human": offer_human,
    "oms_choice": oms_choice,
    "csat": csat,
    offers.STATE: offers.answer,
}
