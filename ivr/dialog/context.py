"""Per-call dialogue state: what the caller wants, which order is in play, verification, counters, transcript."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ivr.dialog.types import BotReply, NluResult, Segment
from ivr.services.shop.api import OrderSnapshot


@dataclass(slots=True)
class Input:
    """One caller input as the flows see it."""

    kind: str  # "text" | "dtmf" | "no_input"
    text: str = ""  # normalised text (empty for dtmf / no input)
    digits: str = ""  # keypad digits as pressed (may end with '#')
    nlu: NluResult | None = None
    raw: str = ""  # the recogniser text as received (digits are re-read from it)

    @property
    def intent(self) -> str:
        return self.nlu.intent if self.nlu else ""

    @property
    def confidence(self) -> float:
        return self.nlu.confidence if self.nlu else 0.0

    @property
    def slots(self) -> dict[str, Any]:
        return dict(self.nlu.slots) if self.nlu else {}

    @property
    def key(self) -> str:
        """A single keypad key without '#', else ''."""
        d = self.digits.rstrip("#")
        return d if len(d) == 1 else ""


@dataclass(slots=True)
class Verification:
    verified: bool = False
    method: str | None = None  # "order_and_phone_tail" (knowledge verification; a caller ID never verifies)
    attempts: int = 0  # wrong answers in this call
    failed: bool = False  # no more attempts in this call
    locked: dict[str, Any] | None = None  # self-service lock across calls (LockStatus.as_json()) when hit
    phones: set[str] = field(default_factory=set)  # customer phones proven in this call


@dataclass(slots=True)
class CallContext:
    """Everything the manager remembers during one call."""

    call_id: str
    caller_id: str
    channel: str
    language: str
    asr_available: bool = True
    caller_id_trusted: bool = False  # a trusted SIP peer vouched for caller_id (else it is only a hint)
    state: str = "start"
    flow: str | None = None  # intent of the running task flow
    flow_data: dict[str, Any] = field(default_factory=dict)
    order: OrderSnapshot | None = None  # the verified order in play (context carry-over)
    pending_order: OrderSnapshot | None = None  # found, waiting for verification
    after_order: str | None = None  # flow continuation to run once the order is verified
    verification: Verification = field(default_factory=Verification)
    order_attempts: int = 0
    intents: list[str] = field(default_factory=list)
    slots: dict[str, Any] = field(default_factory=dict)
    served: int = 0  # tasks completed
    no_input: int = 0  # consecutive silences
    no_match: int = 0  # consecutive misunderstandings in the current state
    question: list[Segment] = field(default_factory=list)  # the open question (reprompts, barge-in)
    question_dtmf: str | None = None  # prompt_id of the keypad help for the open question
    question_heard: bool = True
    expect: str = "speech"
    nlu_expected: str | None = None
    dtmf_buffer: str = ""
    last_reply: BotReply | None = None
    last_question_index: int | None = None  # index in last_reply.segments where the open question starts
    mood: float = 0.0  # running sentiment, -1 angry .. 1 happy
    mood_level: str = "calm"
    apologised_at: float = 0.0
    recent_intents: list[str] = field(default_factory=list)
    transfer_reason: str | None = None
    csat_retries: int = 0
