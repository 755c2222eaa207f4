"""Endpointing beyond a fixed silence: how long to wait after the caller's last word, given what the dialogue
expects and what the recogniser has heard so far (its running partial).

* sooner (``quick_ms``) when the answer is complete: all the digits of an order number or phone tail, a yes/no to
  a yes/no question, a single menu key;
* later (``patient_ms``) when it is not: a number still being read (fewer digits than expected), or a hesitation
  at the end (那个..., 嗯..., 就是...);
* otherwise the configured ``vad_trailing_silence_ms``.

The partial lags the audio by a batch or two; it is re-read as it updates, so a stale "incomplete" (one digit
short) turns into "complete" as soon as the last digit is decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ivr.lang.zh_CN.numbers import parse_digits

ExpectKind = Literal["speech", "digits", "yesno", "key", "none"]

HESITATIONS = ("那个", "这个", "就是", "然后", "还有", "嗯", "呃", "额", "啊", "我想", "我要", "是")
YES_NO = {"是", "是的", "对", "对的", "对对", "好", "好的", "可以", "行", "要", "嗯", "嗯嗯", "没错", "不", "不是",
          "不对", "不用", "不要", "不行", "没有", "算了"}
_PARTICLES = re.compile(r"[\s,，。.!！?？啊呀吧呢哦嘛了]+")
ORDER_DIGITS = 12  # order numbers (100000000002)
PHONE_TAIL_DIGITS = 4  # the verification question: the phone's last four digits


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

    def trailing_ms(self, exp: Expectation, text: str) -> int:
        t = _PARTICLES.sub("", text)
        if not t:
            return self.base_ms
        if t.endswith(HESITATIONS) and not (exp.kind == "yesno" and t in YES_NO):
            return max(self.base_ms, self.patient_ms)
        if exp.kind == "digits" and exp.digits:
            n = len(parse_digits(t))
            if n >= exp.digits:
                return min(self.base_ms, self.quick_ms)
            if n:
                return max(self.base_ms, self.patient_ms)  # a number still being read
        elif exp.kind == "yesno" and (t in YES_NO or t[:2] in YES_NO and len(t) <= 3):
            return min(self.base_ms, self.quick_ms)
        elif exp.kind == "key" and len(t) <= 3 and len(parse_digits(t)) == 1:
            return min(self.base_ms, self.quick_ms)
        return self.base_ms
