"""Personal offers in the dialogue: after a served need, at most one offer per contact from the customer's purchase
history (an accessory or a coupon for what they bought, a restock notice for what they asked about; the shop picks
it: ``ivr.services.shop.offers``), asked as a yes/no question in the ``offer`` state.

Never before verification, never to a caller who complained (a complaint, or feedback words), asked for a person, was apologised to or sounded
angry or frustrated in any turn, never after a return, exchange, cancellation or refund question, never twice in a
contact. A yes or no said over the offer before it was heard (barge-in) asks it again, as confirmations do. The
answer is taken once: yes (an affirmation / key 1) writes through the shop (one transaction, idempotent
per call and offer); anything else is a polite "no" (a denial, a new request), with no second ask. The shop
being down never costs the caller anything: the offer is simply not made, or its failure is said in one sentence.

The record carries the events as actions: ``offer_made:<kind>``, then ``offer_accepted:<kind>`` (with
``coupon_issued`` / ``restock_subscribed``) or ``offer_declined:<kind>``; the dashboard counts them
(``ivr.services.records.channels``). Offers are on when the setting ``offers`` is (or the manager's ``offers``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.dialog.context import Input
    from ivr.dialog.host import SystemHost
    from ivr.services.shop.offers import Offer, OfferService

log = logging.getLogger(__name__)

STATE = "offer"
OFFER_AFTER = ("order_status", "logistics", "invoice", "change_address", "price_promotion", "product_question")
NO_OFFER_INTENTS = ("complaint", "human_agent")
UPSET_LEVELS = ("angry", "frustrated")
MOOD_FLOOR = -0.3  # a running mood at or below this (the dashboard's negative threshold) gets no offer


@dataclass
class OfferState:
    """The contact's offer: whether offers are on, the one made (if any) and what became of it."""

    enabled: bool = False
    made: Offer | None = None
    answer: str = ""  # "" (open) | "accepted" | "declined" | "failed"
    service: OfferService | None = None


def enabled_by_settings() -> bool:
    """The ``offers`` setting (off when the settings cannot be read)."""
    from ivr.config import ConfigError, get_settings

    try:
        return bool(get_settings().offers)
    except (ConfigError, AttributeError):
        return False


def _upset(m: SystemHost) -> bool:
    ctx = m.ctx
    if ctx.mood_level in UPSET_LEVELS or ctx.mood <= MOOD_FLOOR or ctx.apologised_at:
        return True
    return any(t.get("who") == "caller" and (t.get("sentiment_level") in UPSET_LEVELS
                                             or (t.get("sentiment") or 0.0) <= MOOD_FLOOR) for t in m.turns)


def eligible(m: SystemHost, st: OfferState, served_flow: str | None) -> bool:
    """May this contact be made an offer now, after ``served_flow`` was served? (see the module docstring)"""
    ctx = m.ctx
    v = ctx.verification
    if not st.enabled or st.made is not None or served_flow not in OFFER_AFTER:
        return False
    if not v.verified or v.failed or ctx.order is None or ctx.transfer_reason:
        return False
    if m.feedback:  # the caller voiced dissatisfaction (the pack's feedback keywords)
        return False
    return not any(i in NO_OFFER_INTENTS for i in ctx.intents) and not _upset(m)


def _asked(m: SystemHost) -> list[str]:
    """What the caller said in this contact (masked transcript) and the products named in it."""
    said = [str(t.get("text") or "") for t in m.turns if t.get("who") == "caller" and t.get("kind") == "text"]
    product = m.ctx.slots.get("product")
    return [*said, str(product)] if product else said


def _service(m: SystemHost, st: OfferState) -> OfferService | None:
    if st.service is None:
        from ivr.services.shop.offers import offers_for

        st.service = offers_for(m.shop)
    return st.service


def offer(m: SystemHost, st: OfferState, served_flow: str | None) -> bool:
    """Make the contact's one offer when it is eligible and the shop has one; True when it was asked."""
    if not eligible(m, st, served_flow):
        return False
    order = m.ctx.order
    assert order is not None  # eligible() checked it
    try:
        service = _service(m, st)
        found = service.offer_for(order, _asked(m)) if service is not None else None
    except Exception as e:  # an offer is never worth a failed turn
        log.warning("no offer: the shop's offers could not be read: %s", e)
        return False
    if found is None:
        return False
    st.made = found
    fields: dict[str, object] = {"product": found.product, "item": found.item, "title": found.title}
    if found.kind == "restock":
        fields["date"] = m.date(found.restock_on) if found.restock_on else m.text("offer.soon")
    else:
        fields["amount"] = m.amount(found.amount_cents)
        fields["min_spend"] = m.amount(found.min_spend_cents)
    prompt = f"offer.{found.kind}" + (".no_minimum" if found.kind == "coupon" and not found.min_spend_cents else "")
    m.act(f"offer_made:{found.kind}")
    m.ask(STATE, prompt, expect="yesno", dtmf_help="offer.dtmf", nlu_expected="yesno", **fields)
    return True


def answer(m: SystemHost, inp: Input) -> None:
    """The ``offer`` state's handler (``states.STATES``): the manager keeps the contact's :class:`OfferState`."""
    st = getattr(m, "offers", None)
    on_answer(m, inp, st if isinstance(st, OfferState) else OfferState())


def on_answer(m: SystemHost, inp: Input, st: OfferState) -> None:
    """The caller's answer to the offer: yes writes it, anything else declines it politely (once)."""
    found = st.made
    if found is None:  # not expected: no offer open
        return m.ask("main_menu", "anything_else", dtmf_help="menu.dtmf")
    yn = m.yes_no(inp)
    if yn is not None and not m.ctx.question_heard:  # a yes/no said over an offer the caller has not heard yet
        m.ctx.question_heard = True
        m.say("confirm.again")
        m.reask()
        m.act("confirmation_repeated")
        return None
    if yn is True:
        return _accept(m, st, found)
    st.answer = "declined"
    m.act(f"offer_declined:{found.kind}")
    if inp.kind == "text" and inp.intent not in ("deny", "affirm") and m.digression(inp):
        return  # a new request: the offer is dropped without a word
    m.say("offer.declined")
    m.ask("main_menu", "anything_else", dtmf_help="menu.dtmf")


def _accept(m: SystemHost, st: OfferState, found: Offer) -> None:
    order, service = m.ctx.order, st.service
    try:
        if order is None or service is None:
            raise RuntimeError("no order or no offer service")
        result = service.accept(found, order, m.key("offer", found.kind, found.coupon or found.sku))
    except Exception as e:  # the shop refused or is down: one sentence, no retry loop
        log.warning("offer %s could not be written: %s", found.kind, e)
        st.answer = "failed"
        m.act("offer_failed")
        m.say("offer.failed")
        return m.ask("main_menu", "anything_else", dtmf_help="menu.dtmf")
    st.answer = "accepted"
    m.act(f"offer_accepted:{found.kind}")
    if found.kind == "restock":
        m.act("restock_subscribed")
        m.say("offer.accepted.restock")
    else:
        m.act("coupon_issued")
        m.ctx.slots["coupon_id"] = result.ref
        m.say("offer.accepted.coupon", days=m.number(found.valid_days))
    m.ask("main_menu", "anything_else", dtmf_help="menu.dtmf")
