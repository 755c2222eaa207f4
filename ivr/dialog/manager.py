"""The dialogue manager: one per call. Caller input in (text, DTMF, silence, barge-in reports), BotReply out.

Order of handling a caller turn: hang-up state -> strong anger (priority transfer) -> global commands (human,
repeat, main menu, goodbye) -> the current state's handler (special states here, task steps in ``flows``) ->
digression to another task -> the no-match policy. Every caller-facing word comes from the language pack.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ivr.dialog import clarify, gate
from ivr.dialog import handoff as handoff_mod
from ivr.dialog.context import CallContext, Input
from ivr.dialog.flows import FLOWS
from ivr.dialog.kb import KnowledgeBase
from ivr.dialog.options import Options
from ivr.dialog.policy import (
    HUMAN_KEY,
    MENU_KEYS,
    NO_KEY,
    REPEAT_KEY,
    TASK_INTENTS,
    YES_KEY,
    DialogPolicy,
    default_policy,
)
from ivr.dialog.sentiment import Sentiment, analyse
from ivr.dialog.types import BotReply, NluResult, Segment, TransferRequest
from ivr.lang import get_pack
from ivr.privacy import mask_secret, mask_text
from ivr.services.shop.api import OmsError, OmsUnavailable, OrderSnapshot, ShopService

log = logging.getLogger(__name__)

_DTMF_RE = re.compile(r"[^0-9*#A-D]")


KB_FIRST_INTENTS = ("return_request", "exchange_request", "invoice", "other")
ORDER_MIN_DIGITS = 6  # a shorter digit run in a sentence is not taken as an order number unless asked for


class OmsDown(Exception):
    """The shop could not be reached during this turn (handled by the manager, never seen by a caller)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _digits_only(s: str) -> str:
    return re.sub(r"\D", "", s or "")


@dataclass
class _Out:
    """The reply being built during one turn."""

    segments: list[Segment] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    intent: str = ""
    expect: str = "speech"
    barge_in: bool = True
    end_call: bool = False
    transfer: TransferRequest | None = None
    question_index: int | None = None


class DialogManager:
    """Per-call dialogue state machine over a :class:`ShopService` (see module docstring)."""

    def __init__(self, shop: ShopService, *, language: str = "zh-CN", caller_id: str = "", channel: str = "chat",
                 call_id: str = "", asr_available: bool = True, now: Callable[[], datetime] = _utcnow,
                 nlu: Any = None, policy: DialogPolicy | None = None, caller_id_trusted: bool = False,
                 lockout: Any = None):
        self.shop = shop
        self.pack = get_pack(language)
        if nlu is None:
            from ivr.dialog.nlu import get_nlu

            nlu = get_nlu(language)
        self.nlu = nlu
        self.policy = policy or default_policy()
        self.lockout = lockout if lockout is not None else _default_lockout(shop)
        self.now = now
        self.tz = ZoneInfo(self.policy.timezone)
        self.options = Options(self.pack.dir)
        self.kb = KnowledgeBase(self.pack.dir / "kb")
        self.ctx = CallContext(call_id=call_id or uuid.uuid4().hex, caller_id=caller_id or "", channel=channel,
                               language=language, asr_available=asr_available,
                               caller_id_trusted=bool(caller_id_trusted and caller_id))
        self.turns: list[dict[str, Any]] = []
        self.outcome: str = ""
        self.csat: int | None = None
        self.feedback: list[str] = []
        self._reply_id = 0
        self._variants: dict[str, int] = {}
        self._out = _Out()
        self._sentiment = Sentiment(0.0, "calm", 0.0)
        self._caller_turns = 0

    # ------------------------------------------------------------------------------------------------
    # public API (the call session, `ivr chat` and the tests drive these)
    # ------------------------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self.ctx.state

    def start(self) -> BotReply:
        """The greeting; in keypad-only mode (no ASR) it reads the keypad menu."""
        self._out = _Out(intent="greeting")
        if self.ctx.asr_available:
            self.ask("main_menu", "greeting")
        else:
            self.say("greeting.dtmf")
            self.ask("main_menu", "menu.dtmf", expect="digits")
        return self._emit()

    def handle_text(self, text: str, confidence: float = 1.0) -> BotReply:
        """A recognised caller utterance."""
        raw = (text or "").strip()
        if not raw:
            return self.handle_no_input()
        if self.ctx.state == "ended":
            return self._ended_reply()
        norm = self.pack.normalize(raw)
        prev = self.ctx.last_reply.text if self.ctx.last_reply else ""
        try:
            nlu = self.nlu.parse(raw, prev_agent_text=prev, expected=_nlu_expected(self.ctx.nlu_expected))
        except Exception:  # the NLU must never take a call down
            log.exception("nlu failed")
            nlu = NluResult(text=raw, intent="other", confidence=0.0)
        if confidence < self.policy.min_asr_confidence:
            nlu = NluResult(text=raw, intent="other", confidence=0.0, slots={})
        inp = Input("text", norm or raw, "", nlu, raw)
        self._caller_turns += 1
        self._note_feedback(norm or raw)
        self._sentiment = self._analyse(inp)
        self._record_caller(inp, raw)
        return self._turn(inp)

    @property
    def expects_secret(self) -> bool:
        """The next input answers the verification question (a credential: callers' records mask it)."""
        return self.ctx.state == "verify"

    def handle_dtmf(self, digits: str) -> BotReply:
        """Keypad digits. Menus act on one key; numbers are collected until '#' (phone tails at 4 digits)."""
        if self.ctx.state == "ended":
            return self._ended_reply()
        digits = _DTMF_RE.sub("", (digits or "").upper())
        if not digits:
            return self._turn(Input("dtmf", "", "", None))
        collecting = (self.ctx.expect == "digits" and self.ctx.state in ("ask_order", "verify")) \
            or self.ctx.state.endswith(".taxid")
        if digits == REPEAT_KEY:
            self.ctx.dtmf_buffer = ""
        elif collecting and not digits.endswith("#"):
            self.ctx.dtmf_buffer += digits
            if not (self.ctx.state == "verify" and len(self.ctx.dtmf_buffer) >= self.policy.verify_tail_digits):
                return self._silent_reply()
            digits, self.ctx.dtmf_buffer = self.ctx.dtmf_buffer, ""
        else:
            digits, self.ctx.dtmf_buffer = self.ctx.dtmf_buffer + digits, ""
        inp = Input("dtmf", "", digits, None)
        self._caller_turns += 1
        self._record_caller(inp, "")
        return self._turn(inp)

    def handle_no_input(self) -> BotReply:
        """The caller said nothing within the timeout: reprompt with more help each time, then say goodbye."""
        if self.ctx.state == "ended":
            return self._ended_reply()
        self.ctx.no_input += 1
        inp = Input("no_input")
        self._record_caller(inp, "")
        return self._turn(inp)

    def played(self, reply_id: int, segments_played: int, fraction_of_last: float) -> None:
        """Barge-in report: of reply ``reply_id``, ``segments_played`` segments started playing and the last of
        them played to ``fraction_of_last`` (0..1). A question the caller did not hear is not taken as asked."""
        last = self.ctx.last_reply
        if last is None or reply_id != last.reply_id or self.ctx.last_question_index is None:
            return
        n = len(last.segments)
        heard = segments_played > n or (segments_played == n and fraction_of_last >= self.policy.heard_fraction)
        self.ctx.question_heard = heard
        for t in reversed(self.turns):
            if t.get("reply_id") == reply_id:
                t["interrupted"] = True
                t["heard"] = "".join(s.text for s in last.segments[:max(0, segments_played - 1)])
                break

    def handoff(self) -> dict[str, Any]:
        """Structured hand-off for a human agent's screen (caller masked)."""
        return handoff_mod.build(self, self.ctx.transfer_reason or "human_request")

    def end(self, reason: str) -> None:
        """The call ended outside the dialogue (caller hung up, system limit)."""
        if self.ctx.state != "ended":
            if not self.outcome:
                self.outcome = "hangup" if reason in ("", "caller", "hangup", "caller_hangup") else reason
            self.ctx.state = "ended"
        self.turns.append({"who": "system", "event": "end", "reason": reason})

    # ------------------------------------------------------------------------------------------------
    # speaking helpers used by the flows
    # ------------------------------------------------------------------------------------------------
    def text(self, prompt_id: str, **fields: Any) -> str:
        """A prompt's text (variants rotate per call)."""
        n = self._variants.get(prompt_id, 0)
        self._variants[prompt_id] = n + 1
        return self.pack.prompt(prompt_id, variant=n, **fields)

    def say(self, prompt_id: str, **fields: Any) -> Segment:
        seg = Segment(self.text(prompt_id, **fields), None if fields else prompt_id)
        self._out.segments.append(seg)
        return seg

    def say_text(self, text: str, prompt_id: str | None = None) -> None:
        self._out.segments.append(Segment(text, prompt_id))

    def act(self, action: str) -> None:
        if action not in self._out.actions:
            self._out.actions.append(action)

    def no_barge_in(self) -> None:
        """This reply carries a read-back the caller must hear (RMA number, ticket number)."""
        self._out.barge_in = False

    def ask(self, state: str, prompt_id: str, *, expect: str = "speech", dtmf_help: str | None = None,
            nlu_expected: str | None = None, **fields: Any) -> None:
        """Ask a question and wait in ``state``. The question is what reprompts and barge-in refer to."""
        self._out.question_index = len(self._out.segments)
        seg = self.say(prompt_id, **fields)
        question = [seg]
        if not self.ctx.asr_available and dtmf_help and dtmf_help != prompt_id:
            question.append(self.say(dtmf_help))
        self.ctx.question = question
        self.ctx.question_dtmf = dtmf_help
        self.ctx.state = state
        self.ctx.expect = expect
        self._out.expect = expect
        self.ctx.nlu_expected = nlu_expected

    def ask_step(self, step: str, prompt_id: str, **kw: Any) -> None:
        """Ask within the running flow: state becomes '<flow>.<step>'."""
        self.ask(f"{self.ctx.flow}.{step}", prompt_id, **kw)

    def confirm(self, step: str, prompt_id: str, **fields: Any) -> None:
        """A confirmation question before a write (yes/no by voice or 1/2 by keypad)."""
        self.ask(f"{self.ctx.flow}.{step}", prompt_id, expect="yesno", dtmf_help="yesno.reask",
                 nlu_expected="yesno", **fields)

    def reask(self) -> None:
        self._out.question_index = len(self._out.segments)
        self._out.segments.extend(self.ctx.question)
        self._out.expect = self.ctx.expect

    def digits(self, s: str) -> str:
        """Spell an identifier digit by digit (letters stay as they are)."""
        return "".join(self.pack.say_digits(c) if c.isdigit() else c for c in str(s) if c.isalnum())

    def amount(self, cents: int) -> str:
        return self.pack.say_amount(cents)

    def number(self, n: int) -> str:
        return self.pack.say_number(n)

    def today(self) -> date:
        return self.now().astimezone(self.tz).date()

    def local_date(self, t: datetime | date) -> date:
        if isinstance(t, datetime):
            return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(self.tz).date()
        return t

    def date(self, t: datetime | date) -> str:
        return self.pack.say_date(self.local_date(t), today=self.today())

    def label(self, prefix: str, code: str) -> str:
        """Spoken label of an option code (prompt '<prefix>.<code>'), falling back to '<prefix>.other'."""
        pid = f"{prefix}.{code}"
        return self.text(pid if pid in self.pack.prompts else f"{prefix}.other")

    def join(self, parts: list[str]) -> str:
        return self.text("list.sep").join(parts)

    # ------------------------------------------------------------------------------------------------
    # flow control used by the flows
    # ------------------------------------------------------------------------------------------------
    def yes_no(self, inp: Input) -> bool | None:
        if inp.kind == "dtmf":
            return {YES_KEY: True, NO_KEY: False}.get(inp.key)
        if inp.intent == "affirm":
            return True
        if inp.intent == "deny":
            return False
        return None

    def key(self, *parts: Any) -> str:
        """Idempotency key: call + flow + order + what is written, so a repeat never writes twice."""
        order = self.ctx.order.order_id if self.ctx.order else "-"
        digest = hashlib.sha1("|".join(str(p) for p in parts).encode()).hexdigest()[:10]
        return f"{self.ctx.call_id}:{self.ctx.flow}:{order}:{digest}"

    def shop_call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the shop; unreachable (or broken) -> OmsDown, handled by the manager. OmsError passes through."""
        try:
            return fn(*args, **kwargs)
        except OmsUnavailable as e:
            log.warning("order system unavailable: %s", e)
            raise OmsDown() from e
        except OmsError:
            raise
        except Exception as e:
            log.exception("order system error")
            raise OmsDown() from e

    def finish(self) -> None:
        """The task is done: count it and ask whether there is anything else."""
        self.ctx.served += 1
        self.ctx.flow = None
        self.ctx.flow_data = {}
        if clarify.offer_second(self):  # two needs in one utterance: the second is offered now
            return
        self.ask("main_menu", "anything_else", dtmf_help="menu.dtmf")

    def refresh_order(self) -> None:
        if self.ctx.order is not None:
            fresh = self.shop_call(self.shop.get_order, self.ctx.order.order_id)
            if fresh is not None:
                self.ctx.order = fresh

    def with_order(self, continuation: str, inp: Input | None = None) -> None:
        """Run the flow's ``continuation`` once an order is known and the caller verified for it (``gate``)."""
        gate.with_order(self, continuation, inp)

    def transfer(self, reason: str, *, priority: int = 0, prompt_id: str = "human.transfer") -> None:
        self.say(prompt_id)
        self.ctx.transfer_reason = reason
        skill = FLOWS[self.ctx.flow].skill if self.ctx.flow in FLOWS else "general"
        self.ctx.state = "transferred"
        self._out.expect = "none"
        self._out.transfer = TransferRequest(reason=reason, priority=priority, skill=skill,
                                             handoff=handoff_mod.build(self, reason))
        self.act("transfer")
        self.outcome = "transferred"

    def offer_human(self, reason: str) -> None:
        self.ctx.transfer_reason = reason
        self.ask("offer_human", "human.offer", expect="yesno", dtmf_help="yesno.reask", nlu_expected="yesno")

    def end_sequence(self) -> None:
        """Caller is done: a short CSAT question after a served call, else goodbye."""
        if self.ctx.served and self.csat is None and self.ctx.state != "csat":
            self.ctx.flow = None
            self.ask("csat", "csat.ask", expect="rating", nlu_expected="rating")
        else:
            self._goodbye("resolved" if self.ctx.served else "goodbye")

    def start_flow(self, intent: str, inp: Input) -> None:
        if (inp.kind == "text" and intent in KB_FIRST_INTENTS and inp.confidence < self.policy.kb_first_below
                and not self.spoken_order_id(inp) and self.kb.lookup(inp.text) is not None):
            intent = "product_question"  # an unsure task guess that the knowledge base answers is a question
        flow = FLOWS[intent]
        self.ctx.flow = intent
        self.ctx.flow_data = {}
        self.ctx.intents.append(intent)
        self._out.intent = intent
        flow.begin(self, inp)

    # ------------------------------------------------------------------------------------------------
    # turn machinery
    # ------------------------------------------------------------------------------------------------
    def _turn(self, inp: Input) -> BotReply:
        self._out = _Out(intent=inp.intent or ("dtmf" if inp.kind == "dtmf" else inp.kind))
        state_before = self.ctx.state
        if inp.kind != "no_input":
            self.ctx.no_input = 0
        try:
            self._dispatch(inp)
        except OmsDown:
            self._oms_down()
        if self.ctx.state != state_before or self._out.transfer is not None:
            self.ctx.no_match = 0
        return self._emit()

    def _dispatch(self, inp: Input) -> None:
        ctx = self.ctx
        if ctx.state == "transferred":
            self.say("human.transfer")
            self._out.expect = "none"
            return
        if inp.kind == "no_input":
            return self._no_input()
        if inp.kind == "text" and self._sentiment.level == "angry":
            return self.transfer("anger", priority=2, prompt_id="human.transfer_priority")
        if self._global(inp):
            return
        frustrated = inp.kind == "text" and self._sentiment.level == "frustrated" and self._may_apologise()
        if frustrated:
            self.say("sentiment.apology")
            self.act("apology")
        handler = STATES.get(ctx.state)
        if handler is not None:
            handler(self, inp)
        elif ctx.flow and ctx.state.startswith(f"{ctx.flow}."):
            self._flow_step(inp)
        else:
            self._st_main_menu(inp)
        if frustrated and self.ctx.state not in ("transferred", "ended", "offer_human"):
            self.say("human.offer_short")

    def _global(self, inp: Input) -> bool:
        intent, key = inp.intent, inp.key
        collecting = self.ctx.expect == "digits" and inp.kind == "dtmf" and len(inp.digits.rstrip("#")) > 1
        if inp.digits == REPEAT_KEY or intent == "repeat":
            self._out.intent = "repeat"
            last = self.ctx.last_reply
            if last is None or not last.segments:
                self.ask("main_menu", "repeat.nothing")
            else:
                self._out.segments.extend(last.segments)
                self._out.question_index = self.ctx.last_question_index
                self._out.expect = self.ctx.expect
            return True
        if self.ctx.state == "oms_choice" and intent == "human_agent" and \
                self.options.match("oms_choice", inp.text) == "callback":
            return False  # "call me back" mentions a human but picks the callback option
        human_key = key == HUMAN_KEY and not collecting and (self.ctx.expect != "digits" or self.ctx.state == "main_menu")
        if intent == "human_agent" or human_key:  # '0' is a person at the keypad menu too, as the menu says
            self._out.intent = "human_agent"
            self.ctx.intents.append("human_agent")
            self.transfer("human_request")
            return True
        if intent == "main_menu":
            self.ctx.flow, self.ctx.flow_data, self.ctx.after_order = None, {}, None
            self.say("menu.back")
            self.ask("main_menu", "menu.ask" if self.ctx.asr_available else "menu.dtmf", dtmf_help="menu.dtmf")
            return True
        if intent == "goodbye" and self.ctx.state != "csat":
            self.end_sequence()
            return True
        return False

    def _flow_step(self, inp: Input) -> None:
        flow = FLOWS[self.ctx.flow]
        step = self.ctx.state.split(".", 1)[1]
        if self.ctx.expect == "yesno" and not self.ctx.question_heard and self.yes_no(inp) is not None:
            # the caller answered before hearing the question: ask it again instead of acting
            self.ctx.question_heard = True
            self.say("confirm.again")
            self.reask()
            self.act("confirmation_repeated")
            return
        if flow.on_step(self, step, inp):
            if inp.intent in TASK_INTENTS:
                self._out.intent = flow.intent  # the answer to this step, whatever topic its words suggested
            return
        if self.digression(inp):
            return
        self.no_match()

    def digression(self, inp: Input) -> bool:
        if inp.kind == "text" and inp.intent in TASK_INTENTS and inp.confidence >= self.policy.min_intent_confidence \
                and not clarify.unsure(inp):
            self.start_flow(inp.intent, inp)
            return True
        return False

    # --- special states ----------------------------------------------------------------------------
    def _st_main_menu(self, inp: Input) -> None:
        if clarify.route(self, inp):  # an unsure request is asked about; answers to that question and offers
            return
        if inp.kind == "dtmf":
            intent = MENU_KEYS.get(inp.digits) or MENU_KEYS.get(inp.digits.rstrip("#"))
            if intent:
                return self.start_flow(intent, inp)
            self.say("menu.invalid_key")
            return self.ask("main_menu", "menu.dtmf", expect="digits", dtmf_help="menu.dtmf")
        intent = inp.intent
        if intent in TASK_INTENTS and inp.confidence >= self.policy.min_intent_confidence:
            return self.start_flow(intent, inp)
        if self.spoken_order_id(inp):
            return self.start_flow("order_status", inp)
        if intent == "greeting":
            return self.ask("main_menu", "menu.ask", dtmf_help="menu.dtmf")
        if intent == "thanks":
            self.say("thanks.reply")
            if self.ctx.served:
                return self.end_sequence()
            return self.ask("main_menu", "anything_else", dtmf_help="menu.dtmf")
        if intent == "deny" and self.ctx.served:
            return self.end_sequence()
        if intent == "affirm" and self.ctx.served:
            return self.ask("main_menu", "please_go_on", dtmf_help="menu.dtmf")
        if intent in ("wait", "dont_know"):
            return self.ask("main_menu", "wait.ok" if intent == "wait" else "menu.hint", dtmf_help="menu.dtmf")
        entry = self.kb.lookup(inp.text) if inp.text else None
        if entry is not None:
            return self.start_flow("product_question", inp)
        self.no_match()

    def ask_order(self, prefix: str | None = None) -> None:
        if prefix:
            self.say(prefix)
        self.ask("ask_order", "order.ask", expect="digits", nlu_expected="order_id")

    def _st_ask_order(self, inp: Input) -> None:
        order_id = _digits_only(inp.digits) if inp.kind == "dtmf" else self.spoken_order_id(inp, expected=True)
        if not order_id and inp.kind == "text":
            if inp.intent in TASK_INTENTS and inp.intent != self.ctx.flow and self.digression(inp):
                return
            if inp.intent == "dont_know":
                return self.offer_human("order_unknown")
            if inp.intent == "deny":
                self.say("ok")
                return self.finish_without_service()
        if not order_id:
            return self.no_match(first="order.no_digits")
        self._lookup_order(order_id)

    def finish_without_service(self) -> None:
        self.ctx.flow, self.ctx.flow_data, self.ctx.after_order = None, {}, None
        self.ask("main_menu", "anything_else", dtmf_help="menu.dtmf")

    def _lookup_order(self, order_id: str) -> None:
        gate.lookup(self, order_id)

    def longest_digits(self, text: str) -> str:
        """The longest number said digit by digit in the caller's own words (before any normalisation)."""
        spans = getattr(self.pack, "digit_spans", None)
        if spans is None:
            return _digits_only(self.pack.parse_digits(text) or "")
        found = [s.digits for s in spans(text)]
        return max(found, key=len) if found else ""

    def spoken_order_id(self, inp: Input, expected: bool = False) -> str:
        """An order number the caller said: the NLU's slot, or a longer digit run in the raw text."""
        slot = _digits_only(str(inp.slots.get("order_id") or ""))
        spoken = self.longest_digits(inp.raw or inp.text)
        min_len = 3 if expected else ORDER_MIN_DIGITS
        if len(spoken) >= min_len and len(spoken) > len(slot) and len(spoken) != 11:
            return spoken
        return slot

    def use_order(self, order: OrderSnapshot) -> None:
        if self.ctx.order is None or self.ctx.order.order_id != order.order_id:
            self.act("order_selected")
        self.ctx.order, self.ctx.pending_order = order, None
        self.continue_flow()

    def continue_flow(self) -> None:
        cont, self.ctx.after_order = self.ctx.after_order, None
        if self.ctx.flow and cont:
            getattr(FLOWS[self.ctx.flow], cont)(self)
        else:
            self.finish_without_service()

    def _st_verify(self, inp: Input) -> None:
        gate.on_answer(self, inp)

    def _st_offer_human(self, inp: Input) -> None:
        yn = self.yes_no(inp)
        if yn is None:
            if self.digression(inp):
                return
            return self.no_match()
        if yn:
            return self.transfer(self.ctx.transfer_reason or "human_request")
        self.ctx.transfer_reason = None
        if self.ctx.verification.failed:
            return self.end_sequence()
        self.say("ok")
        self.finish_without_service()

    def _st_oms_choice(self, inp: Input) -> None:
        choice = self.options.match("oms_choice", inp.text, inp.digits if inp.kind == "dtmf" else "")
        if choice is None and self.yes_no(inp) is True:
            choice = "human"
        if choice == "human":
            return self.transfer("oms_down")
        if choice == "callback":
            self.act("callback_requested")
            try:
                self.shop.create_ticket("callback", "callback after order system outage", self.ctx.caller_id,
                                        self.ctx.order.order_id if self.ctx.order else None,
                                        {"call_id": self.ctx.call_id}, f"{self.ctx.call_id}:callback")
                self.act("ticket_created")
            except Exception:  # the outage may persist: the hand-off record still carries the request
                log.warning("callback ticket could not be stored")
            self.say("oms.callback_done")
            self.outcome = "callback"
            return self._end_call()
        self.no_match()

    def _st_csat(self, inp: Input) -> None:
        rating = None
        if inp.kind == "dtmf":
            rating = int(inp.key) if inp.key in "12345" and inp.key else None
        else:
            raw = inp.slots.get("rating")
            if raw is None:
                raw = self.pack.parse_number(inp.text.replace(" ", ""))
            try:
                rating = int(raw) if raw is not None else None
            except (TypeError, ValueError):
                rating = None
            if rating is not None and not 1 <= rating <= 5:
                rating = None
        if rating is not None:
            self.csat = rating
            self.act("csat_recorded")
            if self.feedback:
                self.say("feedback.noted")
            self.say("csat.thanks")
            self.outcome = self.outcome or "resolved"
            return self._end_call()
        if self.digression(inp):
            return
        self.ctx.csat_retries += 1
        if self.ctx.csat_retries <= 1:
            return self.ask("csat", "csat.ask", expect="rating", nlu_expected="rating")
        self._goodbye("resolved")

    # --- policy: silence, misunderstanding, outage, end ------------------------------------------------
    def _no_input(self) -> None:
        n = self.ctx.no_input
        if self.ctx.state == "csat":
            return self._goodbye(self.outcome or "resolved")
        if n >= self.policy.max_no_input:
            self.say("no_input.final")
            self.outcome = self.outcome or "no_input"
            return self._end_call()
        if n == 1:
            self.say("no_input.1")
            return self.reask()
        self.say("no_input.2")
        self._keypad_help()

    def no_match(self, first: str = "no_match.1") -> None:
        self.ctx.no_match += 1
        n = self.ctx.no_match
        self.act("no_match")
        if n >= self.policy.max_no_match:
            self.say("no_match.final")
            return self._transfer_silent("no_match")
        if n == 1:
            self.say(first)
            return self.reask()
        self.say("no_match.2")
        self._keypad_help()

    def _keypad_help(self) -> None:
        """Re-ask with the keypad choices of the open question (the main menu's when it has none)."""
        help_id = self.ctx.question_dtmf or ("yesno.reask" if self.ctx.expect == "yesno" else None)
        if help_id is None and self.ctx.state == "main_menu":
            help_id = "menu.dtmf"
        if help_id and all(s.prompt_id != help_id for s in self.ctx.question):
            self._out.question_index = len(self._out.segments)
            self._out.segments.extend(self.ctx.question)
            self.say(help_id)
        else:
            self.reask()
        self._out.expect = self.ctx.expect
        self.act("keypad_offered")

    def _transfer_silent(self, reason: str) -> None:
        """Transfer whose announcement is already in the reply."""
        self.ctx.transfer_reason = reason
        skill = FLOWS[self.ctx.flow].skill if self.ctx.flow in FLOWS else "general"
        self.ctx.state = "transferred"
        self._out.expect = "none"
        self._out.transfer = TransferRequest(reason=reason, priority=0, skill=skill,
                                             handoff=handoff_mod.build(self, reason))
        self.act("transfer")
        self.outcome = "transferred"

    def _oms_down(self) -> None:
        self._out.segments = [s for s in self._out.segments if s.prompt_id in ("sentiment.apology",)]
        self.act("oms_unavailable")
        self.say("oms.down")
        self.ctx.transfer_reason = "oms_down"
        self.ask("oms_choice", "oms.offer", expect="digits")

    def _goodbye(self, outcome: str) -> None:
        self.say("goodbye")
        self.outcome = self.outcome or outcome
        self._end_call()

    def _end_call(self) -> None:
        self.ctx.state = "ended"
        self._out.end_call = True
        self._out.expect = "none"
        self.act("end_call")

    # --- sentiment and feedback ------------------------------------------------------------------------
    def _analyse(self, inp: Input) -> Sentiment:
        repeated = False
        if inp.intent in TASK_INTENTS:
            repeated = self.ctx.recent_intents[-2:].count(inp.intent) >= 1 and self.ctx.flow is None \
                and inp.intent in self.ctx.intents
            self.ctx.recent_intents.append(inp.intent)
        s = analyse(inp.text, self.pack.sentiment, repeated=repeated)
        self.ctx.mood = max(-1.0, min(1.0, 0.5 * self.ctx.mood + s.score))
        self.ctx.mood_level = s.level if s.level in ("angry", "frustrated") else (
            "frustrated" if self.ctx.mood <= -0.5 else "calm")
        return s

    def _may_apologise(self) -> bool:
        if self.ctx.apologised_at and self._caller_turns - self.ctx.apologised_at < self.policy.frustration_repeat_turns:
            return False
        self.ctx.apologised_at = self._caller_turns
        return True

    def _note_feedback(self, text: str) -> None:
        compact = text.replace(" ", "")
        if any(k and k in compact for k in self.options.words("feedback_keywords")):
            self.feedback.append(mask_text(text))
            self._pending_feedback = True

    # --- emitting ----------------------------------------------------------------------------------------
    def _emit(self) -> BotReply:
        out = self._out
        if getattr(self, "_pending_feedback", False):
            self._pending_feedback = False
            if "feedback_recorded" not in out.actions:
                out.actions.append("feedback_recorded")
        self._reply_id += 1
        reply = BotReply(segments=list(out.segments), intent=out.intent or "other", state=self.ctx.state,
                         actions=list(out.actions), end_call=out.end_call, transfer=out.transfer,
                         expect=out.expect if not out.end_call else "none",  # type: ignore[arg-type]
                         barge_in=out.barge_in, sentiment=self._sentiment.score, reply_id=self._reply_id,
                         slots=dict(self.ctx.slots))
        if out.segments:
            self.ctx.last_reply = reply
            self.ctx.last_question_index = out.question_index
            self.ctx.question_heard = True
        self.turns.append({"who": "bot", "text": mask_text(reply.text), "state": reply.state, "intent": reply.intent,
                           "actions": list(reply.actions), "reply_id": reply.reply_id})
        return reply

    def _silent_reply(self) -> BotReply:
        """While keypad digits are being collected nothing is said."""
        self._reply_id += 1
        return BotReply(segments=[], intent="dtmf", state=self.ctx.state, expect="digits", reply_id=self._reply_id)

    def _ended_reply(self) -> BotReply:
        self._out = _Out(intent="other")
        self.say("ended")
        self._out.end_call = True
        return self._emit()

    def _record_caller(self, inp: Input, raw: str) -> None:
        turn: dict[str, Any] = {"who": "caller", "kind": inp.kind, "state": self.ctx.state}
        if self.expects_secret:  # the answer to the verification question: no digit of it is kept
            turn.update(text=mask_secret(raw), dtmf=mask_secret(inp.digits), intent=inp.intent)
        elif inp.kind == "text":
            turn.update(text=mask_text(raw), intent=inp.intent, confidence=round(inp.confidence, 3),
                        slots=_mask_slots(inp.slots), sentiment=self._sentiment.score,
                        sentiment_level=self._sentiment.level)
            for k, v in inp.slots.items():
                if v not in (None, "", [], {}):
                    self.ctx.slots[k] = v
        elif inp.kind == "dtmf":
            turn["dtmf"] = inp.digits
        self.turns.append(turn)


# state -> its handler (task steps '<flow>.<step>' go to the flow; any other state is the main menu)
STATES: dict[str, Callable[[DialogManager, Input], None]] = {
    "main_menu": DialogManager._st_main_menu,
    "ask_order": DialogManager._st_ask_order,
    "verify": DialogManager._st_verify,
    "offer_human": DialogManager._st_offer_human,
    "oms_choice": DialogManager._st_oms_choice,
    "csat": DialogManager._st_csat,
}

_NLU_EXPECTATIONS = {"yesno", "digits", "order_id", "phone_tail", "phone", "rating", "date", "speech"}


def _nlu_expected(expected: str | None) -> str | None:
    """The NLU's name for what the open question expects (free text such as an address is plain speech)."""
    if expected in _NLU_EXPECTATIONS:
        return expected
    return "speech" if expected in ("address", "free_text") else None


def _default_lockout(shop: Any) -> Any:
    """Failure counter in the shop's own database (embedded shop), else in the service database."""
    from ivr.config import ConfigError, get_settings
    from ivr.services.shop.lockout import lockout_for

    try:
        settings = get_settings()
    except ConfigError:
        settings = None
    url = getattr(shop, "url", None)
    if not isinstance(url, str):
        url = settings.database_url if settings is not None else None
    return lockout_for(url, settings)


def _mask_slots(slots: dict[str, Any]) -> dict[str, Any]:
    return {k: (mask_text(v) if isinstance(v, str) else v) for k, v in slots.items()}
