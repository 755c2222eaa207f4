"""Caller sentiment from the language pack's lexicon: anger and frustration words, intensity words, negation,
repetition and complaints. Explainable on purpose: the result lists the words that counted.

Scale: ``negativity`` is a sum of weights (anger word 1.0, frustration word 0.5, times the strongest intensifier,
plus 0.5 when the caller repeats a request); at or above the lexicon's ``strong_anger_threshold`` the caller is
``angry`` (transfer at once, with priority), at or above 1.0 ``frustrated`` (apologise, offer a human).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ivr.dialog.policy import TASK_INTENTS

if TYPE_CHECKING:
    from ivr.dialog.context import CallContext, Input

ANGER_WEIGHT = 1.0
FRUSTRATION_WEIGHT = 0.5
REPETITION_WEIGHT = 0.5
POSITIVE_WEIGHT = 0.5
FRUSTRATED_AT = 1.0
DEFAULT_STRONG_ANGER = 2.5


@dataclass(frozen=True, slots=True)
class Sentiment:
    score: float  # -1 (angry) .. 1 (happy)
    level: str  # "angry" | "frustrated" | "calm" | "positive"
    negativity: float
    words: tuple[str, ...] = field(default_factory=tuple)


def _find(text: str, words: list[str], taken: list[bool]) -> list[tuple[int, str]]:
    """Non-overlapping occurrences, longest words first; marks the characters used in ``taken``."""
    hits: list[tuple[int, str]] = []
    for w in sorted({str(w) for w in words if w}, key=len, reverse=True):
        start = text.find(w)
        while start >= 0:
            span = range(start, start + len(w))
            if not any(taken[i] for i in span):
                for i in span:
                    taken[i] = True
                hits.append((start, w))
            start = text.find(w, start + 1)
    return hits


def analyse(text: str, lexicon: dict[str, Any], *, repeated: bool = False) -> Sentiment:
    """Sentiment of one caller utterance (normalised text) given the pack's ``sentiment`` lexicon."""
    t = (text or "").replace(" ", "")
    taken = [False] * len(t)
    anger = _find(t, lexicon.get("anger", []), taken)
    frustration = _find(t, lexicon.get("frustration", []), taken)
    positive = _find(t, lexicon.get("positive", []), taken)
    negators = [str(n) for n in lexicon.get("negators", [])]
    negated_positive = [(i, w) for i, w in positive if any(t[max(0, i - len(n)):i] == n for n in negators)]
    positive = [p for p in positive if p not in negated_positive]
    intens = lexicon.get("intensifiers", {}) or {}
    factor = max([float(v) for k, v in intens.items() if k and str(k) in t] or [1.0])
    neg = (ANGER_WEIGHT * len(anger) + FRUSTRATION_WEIGHT * (len(frustration) + len(negated_positive))) * factor
    if repeated:
        neg += REPETITION_WEIGHT
    neg = max(0.0, neg - POSITIVE_WEIGHT * len(positive))
    strong = float(lexicon.get("strong_anger_threshold", DEFAULT_STRONG_ANGER))
    if neg >= strong:
        level = "angry"
    elif neg >= FRUSTRATED_AT:
        level = "frustrated"
    elif positive:
        level = "positive"
    else:
        level = "calm"
    score = -min(1.0, neg / strong) if neg else min(1.0, POSITIVE_WEIGHT * len(positive))
    words = tuple(w for _, w in anger + frustration + negated_positive + positive)
    return Sentiment(round(score, 3), level, round(neg, 3), words)


def update_mood(ctx: CallContext, inp: Input, lexicon: dict[str, Any]) -> Sentiment:
    """The sentiment of a caller turn; updates the call's running mood (a request repeated outside a task counts)."""
    repeated = False
    if inp.intent in TASK_INTENTS:
        repeated = ctx.recent_intents[-2:].count(inp.intent) >= 1 and ctx.flow is None and inp.intent in ctx.intents
        ctx.recent_intents.append(inp.intent)
    s = analyse(inp.text, lexicon, repeated=repeated)
    ctx.mood = max(-1.0, min(1.0, 0.5 * ctx.mood + s.score))
    ctx.mood_level = s.level if s.level in ("angry", "frustrated") else (
        "frustrated" if ctx.mood <= -0.5 else "calm")
    return s


def may_apologise(ctx: CallContext, caller_turns: int, every_turns: int) -> bool:
    """Apologise at most every ``every_turns`` caller turns (notes the apology in ``ctx``)."""
    if ctx.apologised_at and caller_turns - ctx.apologised_at < every_turns:
        return False
    ctx.apologised_at = caller_turns
    return True
