"""The repair policy: what the bot does when the caller is silent, is not understood, or the order system is down.

Silence: reprompt, then reprompt with the keypad choices, then a polite goodbye (``max_no_input``).
Not understood: rephrase, then offer the keypad, then hand over to a person (``max_no_match``).
Order system down: drop what was being said, explain, offer a person or a call back (state ``oms_choice``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.dialog.host import SystemHost


def no_input(m: SystemHost) -> None:
    n = m.ctx.no_input
    if m.ctx.state == "csat":
        return m.goodbye(m.outcome or "resolved")
    if n >= m.policy.max_no_input:
        m.say("no_input.final")
        m.outcome = m.outcome or "no_input"
        return m.end_call()
    if n == 1:
        m.say("no_input.1")
        return m.reask()
    m.say("no_input.2")
    keypad_help(m)


def no_match(m: SystemHost, first: str = "no_match.1") -> None:
    m.ctx.no_match += 1
    n = m.ctx.no_match
    m.act("no_match")
    if n >= m.policy.max_no_match:
        m.say("no_match.final")
        return m.hand_over("no_match")  # the announcement is already in the reply
    if n == 1:
        m.say(first)
        return m.reask()
    m.say("no_match.2")
    keypad_help(m)


def keypad_help(m: SystemHost) -> None:
    """Re-ask with the keypad choices of the open question (the main menu's when it has none)."""
    ctx, out = m.ctx, m.out
    help_id = ctx.question_dtmf or ("yesno.reask" if ctx.expect == "yesno" else None)
    if help_id is None and ctx.state == "main_menu":
        help_id = "menu.dtmf"
    if help_id and all(s.prompt_id != help_id for s in ctx.question):
        out.question_index = len(out.segments)
        out.segments.extend(ctx.question)
        m.say(help_id)
    else:
        m.reask()
    out.expect = ctx.expect
    m.act("keypad_offered")


def oms_down(m: SystemHost) -> None:
    """The order system failed during this turn: keep only an apology already said, explain and offer choices."""
    m.out.segments = [s for s in m.out.segments if s.prompt_id in ("sentiment.apology",)]
    m.act("oms_unavailable")
    m.say("oms.down")
    m.ctx.transfer_reason = "oms_down"
    m.ask("oms_choice", "oms.offer", expect="digits")
