"""Call records for text conversations (`ivr chat`, scripted dialogues): wraps a dialogue manager, one turn per reply.

The voice call session writes its own record; this gives a text chat the same record (channel ``chat``), so every
conversation lands in the statistics. The manager is duck-typed (``start``, ``handle_text``, ``handle_dtmf``,
``handle_no_input``, ``end``, ``outcome``, ``csat``, ``feedback``, ``ctx.served``, ``expects_secret``): services do
not import the dialogue. Answers to the verification question are kept with their digits masked.
Text turns have no ASR confidence and no audio latency; the dialogue's own decision time is kept in
``timing["dialog_ms"]``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ivr.privacy import mask_phone, mask_secret
from ivr.services.records.masking import caller_key
from ivr.services.records.model import CallRecord


class RecordedDialog:
    """Drive ``manager`` through these methods; :meth:`finish` completes the record and saves it to ``store``."""

    def __init__(self, manager: Any, store: Any | None = None, *, channel: str = "chat", caller_id: str = "",
                 call_id: str = "", secret: str = "", language: str = "zh-CN",
                 clock: Callable[[], datetime] | None = None) -> None:
        self.m = manager
        self.store = store
        self.clock = clock or (lambda: datetime.now(UTC))
        self.record = CallRecord(
            call_id=call_id or getattr(getattr(manager, "ctx", None), "call_id", "") or f"chat-{uuid.uuid4().hex[:12]}",
            channel=channel,
            caller=mask_phone(caller_id), caller_key=caller_key(caller_id, secret), language=language,
            started_at=self.clock(), asr_mode="text",
        )
        self._done = False

    def _turn(self, kind: str, text: str, source: str, call: Callable[[], Any],
              asr_confidence: float | None = None) -> Any:
        if getattr(self.m, "expects_secret", False):  # the answer to the verification question is a credential
            text = mask_secret(text)
        t0 = time.perf_counter()
        reply = call()
        ms = round((time.perf_counter() - t0) * 1000.0, 2)
        if reply.segments or reply.actions or reply.end_call or reply.transfer is not None:
            self.record.add_turn(
                kind, at=self.clock(), caller_text=text, input_source=source, asr_confidence=asr_confidence,
                bot_text=reply.text,
                intent=reply.intent, confidence=reply.confidence if kind == "speech" else None,
                slots=dict(reply.slots), actions=list(reply.actions),
                sentiment=reply.sentiment if kind == "speech" else None, state=reply.state,
                timing={"dialog_ms": ms})
        if reply.transfer is not None:
            self.record.transfer_reason = reply.transfer.reason
        return reply

    def start(self) -> Any:
        return self._turn("start", "", "", self.m.start)

    def text(self, text: str, asr_confidence: float | None = None) -> Any:
        """A caller utterance; ``asr_confidence`` when it came from a recogniser (scripted ASR results)."""
        conf = 1.0 if asr_confidence is None else asr_confidence
        return self._turn("speech", text, "text" if asr_confidence is None else "asr",
                          lambda: self.m.handle_text(text, conf), asr_confidence)

    def dtmf(self, digits: str) -> Any:
        return self._turn("dtmf", digits, "dtmf", lambda: self.m.handle_dtmf(digits))

    def no_input(self) -> Any:
        return self._turn("no_input", "", "", self.m.handle_no_input)

    def finish(self, reason: str = "caller_hangup", ended_by: str = "caller") -> CallRecord:
        """End the dialogue (idempotent), decide the outcome like the call session does, save."""
        if self._done:
            return self.record
        self._done = True
        self.m.end(reason)
        rec = self.record
        rec.ended_at, rec.end_reason, rec.ended_by = self.clock(), reason, ended_by
        if isinstance(getattr(self.m, "csat", None), int):
            rec.csat = self.m.csat
        if getattr(self.m, "feedback", None):
            rec.feedback = "; ".join(str(f) for f in self.m.feedback)
            rec.feedback_keywords = _keywords_hit(self.m, rec.feedback)
        said = str(getattr(self.m, "outcome", "") or "")
        rec.outcome = rec.dialogue_outcome(said, int(getattr(getattr(self.m, "ctx", None), "served", 0) or 0))
        if self.store is not None:
            self.store.save(rec)
        return rec


def _keywords_hit(manager: Any, text: str) -> list[str]:
    try:
        words = manager.options.words("feedback_keywords")
    except AttributeError:
        return []
    compact = text.replace(" ", "")
    return sorted({w for w in words if w and w in compact})
