"""The dialogue manager: one per call. Caller input in (text, DTMF, silence, barge-in reports), BotReply out.

Order of handling a caller turn: hang-up state -> strong anger (priority transfer) -> global commands (human,
repeat, main menu, goodbye) -> the current state's handler (system states through the ``states.STATES`` table,
task steps in ``flows``) -> digression to another task -> the no-match policy (``repair``). Every caller-facing
word comes from the language pack.

The parts: ``reply`` (the reply builder the flows speak with), ``gate`` (which order, and proof the caller may
hear about it), ``states`` (system states), ``repair`` (silence, misunderstanding, outage), ``sentiment`` (mood),
``transcript`` (the masked turn log). Flows see the manager only as ``host.FlowHost``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

from ivr.dialog import clarify, gate, repair, states, transcript
from ivr.dialog import handoff as handoff_mod
from ivr.dialog import offers as offers_mod
from ivr.dialog import resume as resume_mod
from ivr.dialog.context import CallContext, Input
from ivr.dialog.flows import FLOWS
from ivr.dialog.kb import KnowledgeBase
from ivr.dialog.options import Options
from ivr.dialog.policy import REPEAT_KEY, TASK_INTENTS, DialogPolicy, default_policy
from ivr.dialog.reply import ReplyBuilder, ReplyDraft
from ivr.dialog.sentiment import Sentiment, may_apologise, update_mood
from ivr.dialog.shopdb import side_tables_db
from ivr.dialog.states import STATES
from ivr.dialog.types import BotReply, NluResult, Segment, TransferRequest
from ivr.lang import get_pack
from ivr.services.shop.api import OmsError, OmsUnavailable, OrderSnapshot, ShopService

if TYPE_CHECKING:
    from ivr.dialog.host import Parser
    from ivr.services.shop.lockout import LockoutStore

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger(__name__)

_DTMF_RE = re.compile(r"[^0-9*#A-D]")


KB_FIRST_INTENTS = ("return_request", "exchange_request", "invoice", "other")


class OmsDown(Exception):
    """The shop could not be reached during this turn (handled by the manager, never seen by a caller)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DialogManager(ReplyBuilder):
    """Per-call dialogue state machine over a :class:`ShopService` (see module docstring). The reply-building
    vocabulary comes from :class:`ReplyBuilder`; it is the ``FlowHost``/``SystemHost`` the flows and states use."""

    def __init__(self, shop: ShopService, *, language: str = "zh-CN", caller_id: str = "", channel: str = "chat",
                 call_id: str = "", asr_available: bool = True, now: Callable[[], datetime] = _utcnow,
                 nlu: Parser | None = None, policy: DialogPolicy | None = None, caller_id_trusted: bool = False,
                 lockout: LockoutStore | None = None, offers: bool | None = None) -> None:
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
        self.out = ReplyDraft()
        self._sentiment = Sentiment(0.0, "calm", 0.0)
        self._caller_turns = 0
        self._pending_feedback = False
        self.resume = resume_mod.for_shop(shop)  # one customer history across channels
        self.offers = offers_mod.OfferState(offers_mod.enabled_by_settings() if offers is None else offers)

    # ------------------------------------------------------------------------------------------------
    # public API (the call session, `ivr chat` and the tests drive these)
    # ------------------------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self.ctx.state

    def start(self) -> BotReply:
        """The greeting; in keypad-only mode (no ASR) it reads the keypad menu."""
        self.out = ReplyDraft(intent="greeting")
        if self.ctx.asr_available:
            self.ask("main_menu", "greeting")
            # Asked again (not understood, or "say that again"), the question is its short form, not the welcome.
            self.ctx.question = [Segment(self.text("menu.ask"), "menu.ask")]
        else:
            self.say("greeting.dtmf")
            self.ask("main_menu", "menu.dtmf", expect="digits")
        self.resume.at_start(self)
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
        said = transcript.feedback_of(norm or raw, self.options.words("feedback_keywords"))
        if said is not None:
            self.feedback.append(said)
            self._pending_feedback = True
        self._sentiment = update_mood(self.ctx, inp, self.pack.sentiment)
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
        transcript.mark_interrupted(self.turns, last, segments_played)

    def handoff(self) -> dict[str, Any]:
        """Structured hand-off for a human agent's screen (caller masked)."""
        return handoff_mod.build(self, self.ctx.transfer_reason or "human_request")

    def end(self, reason: str) -> None:
        """The call ended outside the dialogue (caller hung up, system limit)."""
        if self.ctx.state != "ended":
            if not self.outcome:
                self.outcome = "hangup" if reason in ("", "caller", "hangup", "caller_hangup") else reason
            self.ctx.state = "ended"
        self.turns.append(transcript.end_turn(reason))
        self.resume.at_end(self)

    # ------------------------------------------------------------------------------------------------
    # flow control used by the flows
    # ------------------------------------------------------------------------------------------------
    def key(self, *parts: object) -> str:
        """Idempotency key: call + flow + order + what is written, so a repeat never writes twice."""
        order = self.ctx.order.order_id if self.ctx.order else "-"
        digest = hashlib.sha1("|".join(str(p) for p in parts).encode()).hexdigest()[:10]
        return f"{self.ctx.call_id}:{self.ctx.flow}:{order}:{digest}"

    def shop_call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
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
        served, self.ctx.flow = self.ctx.flow, None
        self.ctx.flow_data = {}
        if clarify.offer_second(self):  # two needs in one utterance: the second is offered now
            return
        if offers_mod.offer(self, self.offers, served):  # at most one personal offer per contact
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
        self.hand_over(reason, priority)

    def hand_over(self, reason: str, priority: int = 0) -> None:
        """Transfer to a person (whatever announces it is already in the reply)."""
        self.ctx.transfer_reason = reason
        skill = FLOWS[self.ctx.flow].skill if self.ctx.flow in FLOWS else "general"
        self.ctx.state = "transferred"
        self.out.expect = "none"
        self.out.transfer = TransferRequest(reason=reason, priority=priority, skill=skill,
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
            self.goodbye("resolved" if self.ctx.served else "goodbye")

    def start_flow(self, intent: str, inp: Input) -> None:
        if (inp.kind == "text" and intent in KB_FIRST_INTENTS and inp.confidence < self.policy.kb_first_below
                and not self.spoken_order_id(inp) and self.kb.lookup(inp.text) is not None):
            intent = "product_question"  # an unsure task guess that the knowledge base answers is a question
        flow = FLOWS[intent]
        self.ctx.flow = intent
        self.ctx.flow_data = {}
        self.ctx.intents.append(intent)
        self.out.intent = intent
        flow.begin(self, inp)

    # ------------------------------------------------------------------------------------------------
    # turn machinery
    # ------------------------------------------------------------------------------------------------
    def _turn(self, inp: Input) -> BotReply:
        self.out = ReplyDraft(intent=inp.intent or ("dtmf" if inp.kind == "dtmf" else inp.kind))
        state_before = self.ctx.state
        if inp.kind != "no_input":
            self.ctx.no_input = 0
        try:
            self._dispatch(inp)
        except OmsDown:
            repair.oms_down(self)
        self.resume.after_turn(self)
        if self.ctx.state != state_before or self.out.transfer is not None:
            self.ctx.no_match = 0
        return self._emit()

    def _dispatch(self, inp: Input) -> None:
        ctx = self.ctx
        if ctx.state == "transferred":
            self.say("human.transfer")
            self.out.expect = "none"
            return
        if inp.kind == "no_input":
            return repair.no_input(self)
        if inp.kind == "text" and self._sentiment.level == "angry":
            return self.transfer("anger", priority=2, prompt_id="human.transfer_priority")
        if states.global_command(self, inp):
            return
        frustrated = inp.kind == "text" and self._sentiment.level == "frustrated" \
            and may_apologise(self.ctx, self._caller_turns, self.policy.frustration_repeat_turns)
        if frustrated:
            self.say("sentiment.apology")
            self.act("apology")
        handler = STATES.get(ctx.state)
        if handler is not None:
            handler(self, inp)
        elif ctx.flow and ctx.state.startswith(f"{ctx.flow}."):
            states.flow_step(self, inp)
        else:
            STATES["main_menu"](self, inp)
        if frustrated and self.ctx.state not in ("transferred", "ended", "offer_human"):
            self.say("human.offer_short")

    def digression(self, inp: Input) -> bool:
        if inp.kind == "text" and inp.intent in TASK_INTENTS and inp.confidence >= self.policy.min_intent_confidence \
                and not clarify.unsure(inp):
            self.start_flow(inp.intent, inp)
            return True
        return False

    # --- the order in play (``gate`` identifies and verifies) -------------------------------------------
    def ask_order(self, prefix: str | None = None) -> None:
        if prefix:
            self.say(prefix)
        self.ask("ask_order", "order.ask", expect="digits", nlu_expected="order_id")

    def finish_without_service(self) -> None:
        self.ctx.flow, self.ctx.flow_data, self.ctx.after_order = None, {}, None
        self.ask("main_menu", "anything_else", dtmf_help="menu.dtmf")

    def lookup_order(self, order_id: str) -> None:
        gate.lookup(self, order_id)

    def longest_digits(self, text: str) -> str:
        return gate.longest_digits(self.pack, text)

    def spoken_order_id(self, inp: Input, expected: bool = False) -> str:
        return gate.spoken_order_id(self.pack, inp, expected)

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

    # --- repair and the end of the call -----------------------------------------------------------------
    def no_match(self, first: str = "no_match.1") -> None:
        """The caller was not understood (``repair``: rephrase, keypad, then a person)."""
        repair.no_match(self, first)

    def goodbye(self, outcome: str) -> None:
        self.say("goodbye")
        self.outcome = self.outcome or outcome
        self.end_call()

    def end_call(self) -> None:
        self.ctx.state = "ended"
        self.out.end_call = True
        self.out.expect = "none"
        self.act("end_call")

    # --- emitting ----------------------------------------------------------------------------------------
    def _emit(self) -> BotReply:
        out = self.out
        if self._pending_feedback:
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
        self.turns.append(transcript.bot_turn(reply))
        return reply

    def _silent_reply(self) -> BotReply:
        """While keypad digits are being collected nothing is said."""
        self._reply_id += 1
        return BotReply(segments=[], intent="dtmf", state=self.ctx.state, expect="digits", reply_id=self._reply_id)

    def _ended_reply(self) -> BotReply:
        self.out = ReplyDraft(intent="other")
        self.say("ended")
        self.out.end_call = True
        return self._emit()

    def _record_caller(self, inp: Input, raw: str) -> None:
        self.turns.append(transcript.caller_turn(self.ctx, inp, raw, secret=self.expects_secret,
                                                 sentiment=self._sentiment))


_NLU_EXPECTATIONS = {"yesno", "digits", "order_id", "phone_tail", "phone", "rating", "date", "speech"}


def _nlu_expected(expected: str | None) -> str | None:
    """The NLU's name for what the open question expects (free text such as an address is plain speech)."""
    if expected in _NLU_EXPECTATIONS:
        return expected
    return "speech" if expected in ("address", "free_text") else None


def _default_lockout(shop: ShopService) -> LockoutStore:
    """Failure counter in the shop's own database (embedded shop), else in the service database."""
    from ivr.services.shop.lockout import lockout_for

    return lockout_for(*side_tables_db(shop))

