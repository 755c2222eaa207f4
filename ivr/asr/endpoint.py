"""Endpointing beyond a fixed silence: how long to wait after the caller's last word, given what the dialogue
expects and what the recogniser has heard so far (its running partial).

* sooner (``quick_ms``) when the answer is complete: all the digits of an order number or phone tail, a yes/no to
  a yes/no question, a single menu key;
* later (``patient_ms``) when it is not: a number still being read (fewer digits than expected), or a hesitation
  at the end (the language pack's ``endpointing.hesitations``);
* otherwise the configured ``vad_trailing_silence_ms``.

The partial lags the audio by a batch or two; it is re-read as it updates, so a stale "incomplete" (one digit
short) turns into "complete" as soon as the last digit is decoded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

ExpectKind = Literal["speech", "digits", "yesno", "key", "none"]

ORDER_DIGITS = 12  # order numbers (100000000002)
PHONE_TAIL_DIGITS = 4  # the verification question: the phone's last four digits


@dataclass(frozen=True, slots=True)
class EndpointWords:
    """The language's words that move a turn's end, from its language pack (``pack.yaml`` ``endpointing``)."""

    hesitations: tuple[str, ...] = ()  # a turn ending on one of these is not over yet
    yes_no: frozenset[str] = frozenset()  # complete answers to a yes/no question
    particles: re.Pattern[str] = re.compile(r"\s+")  # dropped before comparing
    parse_digits: Callable[[str], str] = lambda text: "".join(ch for ch in text if ch.isdigit())

    @classmethod
    def for_language(cls, code: str = "zh-CN") -> EndpointWords:
        from ivr.lang import get_pack

        pack = get_pack(code)
        e = pack.endpointing
        return cls(tuple(e.get("hesitations", ())), frozenset(e.get("yes_no", ())),
                   re.compile(e.get("particles", r"\s+")), pack.parse_digits)


@dataclass(frozen=True, slots=True)
class Expectation:
    """What the dialogue waits for next (the call derives it from the reply's ``expect`` and ``state``)."""

    kind: ExpectKind = "speech"
    digits: int = 0  # digits that complete the answer (0: not a fixed-length number)

    @classmethod
    def for_reply(cls, expect: str, state: str) -> Expectation:
        """``BotReply.expect`` (speech | digits | yesno | rating | none) and ``BotReply.state`` -> expectation."""
        if state == "ask_order":
            return cls("digits", ORDER_DIGITS)
        if state == "verify":
            return cls("digits", PHONE_TAIL_DIGITS)
        if expect == "yesno":
            return cls("yesno")
        if expect in ("digits", "rating"):
            return cls("key")  # a menu choice or a 1-5 rating: one key
        if expect == "none":
            return cls("none")
        return cls("speech")


@dataclass(frozen=True, slots=True)
class EndpointPolicy:
    """Trailing silence for the current utterance from the expectation and the running text."""

    base_ms: int = 500  # vad_trailing_silence_ms
    quick_ms: int = 300  # the answer is complete
    patient_ms: int = 1000  # the answer is still coming
    words: EndpointWords = field(default_factory=EndpointWords.for_language)  # the call's language (default zh-CN)

    def trailing_ms(self, exp: Expectation, text: str) -> int:
        w = self.words
        t = w.particles.sub("", text)
        if not t:
            return self.base_ms
        if w.hesitations and t.endswith(w.hesitations) and not (exp.kind == "yesno" and t in w.yes_no):
            return max(self.base_ms, self.patient_ms)
        if exp.kind == "digits" and exp.digits:
            n = len(w.parse_digits(t))
            if n >= exp.digits:
                return min(self.base_ms, self.quick_ms)
            if n:
                return max(self.base_ms, self.patient_ms)  # a number still being read
        elif exp.kind == "yesno" and (t in w.yes_no or t[:2] in w.yes_no and len(t) <= 3):
            return min(self.base_ms, self.quick_ms)
        elif exp.kind == "key" and len(t) <= 3 and len(w.parse_digits(t)) == 1:
            return min(self.base_ms, self.quick_ms)
        return self.base_ms
