"""The identity gate of the dialogue: which order the caller means, and proof that the caller may hear about it.

Rules (docs/security.md):
- A caller ID is a hint. Untrusted (any SIP peer not in ``sip_trusted_peers``, WebRTC, chat) it reveals nothing:
  the caller gives the order number and then the last digits of the order's phone (``verify_tail_digits``).
- A trusted caller ID (a configured trunk/PBX vouched for it) may hear only that an order exists; the status,
  products, dates and every write still need the same knowledge verification.
- Wrong answers are counted across calls (``ivr.services.shop.lockout``): after ``verify_lock_failures`` in the
  window the order (and the caller) is locked for self-service and the caller is offered a person.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ivr.dialog.policy import TASK_INTENTS

if TYPE_CHECKING:
    from ivr.dialog.context import Input
    from ivr.dialog.host import FlowHost
    from ivr.lang import LanguagePack
    from ivr.services.shop.lockout import LockStatus

ORDER_MIN_DIGITS = 6  # a shorter digit run in a sentence is not taken as an order number unless asked for


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s or "")


def longest_digits(pack: LanguagePack, text: str) -> str:
    """The longest number said digit by digit in the caller's own words (before any normalisation)."""
    spans = getattr(pack, "digit_spans", None)
    if spans is None:
        return _digits(pack.parse_digits(text) or "")
    found = [s.digits for s in spans(text)]
    return max(found, key=len) if found else ""


def spoken_order_id(pack: LanguagePack, inp: Input, expected: bool = False) -> str:
    """An order number the caller said: the NLU's slot, or a longer digit run in the raw text."""
    slot = _digits(str(inp.slots.get("order_id") or ""))
    spoken = longest_digits(pack, inp.raw or inp.text)
    min_len = 3 if expected else ORDER_MIN_DIGITS
    if len(spoken) >= min_len and len(spoken) > len(slot) and len(spoken) != 11:
        return spoken
    return slot


def phone_key(phone: str) -> str:
    return _digits(phone)[-11:]


def with_order(m: FlowHost, continuation: str, inp: Input | None) -> None:
    """Run the flow's ``continuation`` once an order is named and the caller verified for it."""
    m.ctx.after_order = continuation
    order_id = m.spoken_order_id(inp) if inp is not None and inp.kind == "text" else ""
    if order_id:
        return lookup(m, order_id)
    if m.ctx.order is not None:
        m.refresh_order()
        return m.continue_flow()
    ctx = m.ctx
    if ctx.caller_id and ctx.caller_id_trusted and not ctx.flow_data.get("offered_recent"):
        ctx.flow_data["offered_recent"] = True
        if m.shop_call(m.shop.orders_for_phone, ctx.caller_id, 1):
            m.say("order.recent_exists")  # that an order exists is all a trusted caller ID unlocks
            m.act("recent_order_hinted")
    m.ask_order()


def lookup(m: FlowHost, order_id: str) -> None:
    order = m.shop_call(m.shop.get_order, order_id)
    if order is None:
        ctx = m.ctx
        ctx.order_attempts += 1
        m.act("order_not_found")
        if ctx.order_attempts >= m.policy.max_order_attempts:
            m.say("order.give_up")
            return m.offer_human("order_unknown")
        m.say("order.not_found", order_id=m.digits(order_id))
        if ctx.order_attempts >= 2:
            return m.ask("ask_order", "order.not_found_again", expect="digits", nlu_expected="order_id")
        return m.ask("ask_order", "order.ask", expect="digits", nlu_expected="order_id")
    m.ctx.pending_order = order
    m.ctx.slots["order_id"] = order.order_id
    verify_or_continue(m)


def verify_or_continue(m: FlowHost) -> None:
    """The caller named ``pending_order``: use it if this call already proved its phone, else ask the secret."""
    order = m.ctx.pending_order
    assert order is not None
    v = m.ctx.verification
    if phone_key(order.phone) in v.phones:
        return m.use_order(order)
    if v.failed:
        m.say("verify.locked")
        return m.offer_human("verify_failed")
    st = m.shop_call(m.lockout.status, order.order_id, caller_id=m.ctx.caller_id)
    if st.locked:
        return _locked(m, st)
    ask_secret(m)


def ask_secret(m: FlowHost) -> None:
    n = m.policy.verify_tail_digits
    if n == 4:
        return m.ask("verify", "verify.ask", expect="digits", nlu_expected="phone_tail")
    m.ask("verify", "verify.ask_n", expect="digits", nlu_expected="phone_tail", n=m.number(n))


def heard_secret(m: FlowHost, inp: Input) -> str:
    """The digits the caller gave as the answer ('' when none)."""
    if inp.kind == "dtmf":
        return _digits(inp.digits)
    tail = _digits(str(inp.slots.get("phone_tail") or ""))
    spoken = m.longest_digits(inp.raw or inp.text)
    return spoken if len(spoken) >= 4 and len(spoken) > len(tail) else tail


def on_answer(m: FlowHost, inp: Input) -> None:
    """State ``verify``: the caller's answer to the verification question."""
    order = m.ctx.pending_order
    if order is None:
        return m.finish_without_service()
    n = m.policy.verify_tail_digits
    tail = heard_secret(m, inp)
    if len(tail) < min(4, n):
        if inp.kind == "text" and inp.intent in TASK_INTENTS and m.digression(inp):
            return
        return m.no_match()
    v = m.ctx.verification
    expected = phone_key(order.phone)[-n:]
    if len(tail) >= n and tail[-n:] == expected:
        v.verified, v.method = True, v.method or "order_and_phone_tail"
        v.phones.add(phone_key(order.phone))
        m.act("caller_verified")
        m.say("verify.ok")
        return m.use_order(order)
    v.attempts += 1
    m.act("verification_failed")
    st = m.shop_call(m.lockout.record_failure, order.order_id, caller_id=m.ctx.caller_id, call_id=m.ctx.call_id)
    if st.locked:
        return _locked(m, st)
    if v.attempts >= m.policy.max_verify_attempts:
        v.failed = True
        m.ctx.pending_order = None
        m.say("verify.locked")
        return m.offer_human("verify_failed")
    m.say("verify.fail" if n == 4 else "verify.fail_n", **({} if n == 4 else {"n": m.number(n)}))
    ask_secret(m)


def _locked(m: FlowHost, st: LockStatus) -> None:
    """Self-service is locked for this order/caller: say so and offer a person (the agent card shows it)."""
    v = m.ctx.verification
    v.failed, v.locked = True, st.as_json()  # the order stays named (unproven) so the agent card shows the lock
    m.act("self_service_locked")
    m.say("verify.order_locked")
    m.offer_human("verify_locked")

