"""The call record's turns and outcome: what the session writes after each reply and at hang-up.

:class:`TurnWriter` turns (caller input, bot reply) into a :class:`TurnRecord` (verification answers masked, keys
the dialogue is still collecting joined into the next turn), stamps first-audio latency, decides the outcome and
saves the record on one writer thread for all calls.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from ivr.call.parts import DialogLike
from ivr.dialog.types import BotReply
from ivr.events import TurnTiming
from ivr.privacy import mask_secret
from ivr.services.records.model import CallRecord, TurnRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TurnInput:
    """What the caller did for one turn."""

    kind: str  # "start" | "speech" | "dtmf" | "no_input" | "system"
    text: str = ""
    source: str = ""
    asr_confidence: float | None = None
    secret: bool = False  # the answer to a verification question: digits masked in the record


@dataclass(frozen=True, slots=True)
class Ending:
    """How the call ended, as the session saw it."""

    by: str  # caller | bot | system
    reason: str
    outcome: str = ""  # set by the session or a transfer hook (transferred, callback, failed, abandoned)
    transferring: bool = False  # the caller hung up while being handed over


class RecordStoreLike(Protocol):
    def save(self, record: CallRecord) -> None: ...


class TurnWriter:
    """Writes one call's turns into ``record``."""

    def __init__(self, record: CallRecord) -> None:
        self.record = record
        self._dtmf_keys = ""

    def write(self, inp: TurnInput, reply: BotReply) -> TurnRecord | None:
        """Record the turn; None for a silent reply (keys the dialogue is still collecting join the next turn)."""
        silent = not reply.segments and not reply.actions and not reply.end_call and reply.transfer is None
        text = inp.text
        if inp.kind == "dtmf":
            text, self._dtmf_keys = self._dtmf_keys + inp.text, ""
            if silent:
                self._dtmf_keys = text
        if silent:
            return None
        return self.record.add_turn(
            inp.kind, caller_text=mask_secret(text) if inp.secret else text, input_source=inp.source,
            asr_confidence=inp.asr_confidence, bot_text=reply.text, intent=reply.intent, confidence=reply.confidence,
            slots=dict(reply.slots), actions=list(reply.actions), sentiment=reply.sentiment, state=reply.state,
        )

    @staticmethod
    def first_audio(turn: TurnRecord, timing: TurnTiming) -> None:
        """The reply's first audio left: latency and the hop timings, in ms after the turn's reference point."""
        lat = timing.latency_ms()
        turn.latency_ms = None if lat is None else round(lat, 1)
        turn.timing = relative(timing)

    def finish(self, dialog: DialogLike, ending: Ending) -> str:
        """Fill in end fields, CSAT and feedback; return (and set) the outcome.

        In order: an outcome set during the call (a human took it, a ticket was made, an error); a hang-up in
        the middle of a hand-over (abandoned); an error; else what the conversation earned
        (:meth:`CallRecord.dialogue_outcome`, the rule text chats share)."""
        rec = self.record
        rec.ended_by = ending.by or "system"
        rec.end_reason = ending.reason
        if isinstance(dialog.csat, int):
            rec.csat = dialog.csat
        if dialog.feedback:
            rec.feedback = "; ".join(str(f) for f in dialog.feedback)
        if ending.outcome:
            rec.outcome = ending.outcome
        elif ending.transferring:
            rec.extra["abandoned_in_transfer"] = True
            rec.outcome = "abandoned"
        elif ending.reason == "error":
            rec.outcome = "failed"
        else:
            rec.outcome = rec.dialogue_outcome(str(dialog.outcome or ""), int(dialog.ctx.served or 0))
        return rec.outcome


def relative(t: TurnTiming) -> dict[str, float | None]:
    """Timing as ms after the turn's reference point (speech end / key press / answer)."""
    ref = t.speech_end
    return {k: None if v is None or ref is None else round((v - ref) * 1000.0, 1) for k, v in t.as_dict().items()}


_writer: ThreadPoolExecutor | None = None


async def save_record(store: RecordStoreLike | None, record: CallRecord) -> None:
    """Save on one writer thread for all calls (SQLite serialises writes anyway; fewer GIL-hungry threads keep
    every call's audio clock on time). Records never break a call: failures are logged."""
    global _writer
    if store is None:
        return
    if _writer is None:
        _writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivr-records")
    try:
        await asyncio.get_running_loop().run_in_executor(_writer, store.save, record)
    except Exception as e:
        log.error("cannot save call record: %s", e)
