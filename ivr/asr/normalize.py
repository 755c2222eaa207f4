"""Script-level clean-up of recogniser text (no language-specific rules: number parsing lives in ivr/lang)."""

from __future__ import annotations

import re

# Han ideographs (incl. extension A, compatibility), CJK punctuation, kana, full-width forms: scripts written
# without spaces between words. Hangul is deliberately absent: Korean separates words with spaces.
_NO_SPACE = r"\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_SPACE_AFTER = re.compile(rf"(?<=[{_NO_SPACE}])\s+")
_SPACE_BEFORE = re.compile(rf"\s+(?=[{_NO_SPACE}])")
_RUNS = re.compile(r"\s+")
_NON_SPEECH = re.compile(r"(?<!\S)\[[^\]\s]*\](?!\S)")  # whole tokens like [unk], [noise], [10]


def is_non_speech(word: str) -> bool:
    """True for recogniser tokens that are not words (``[unk]``, ``[noise]``...)."""
    return bool(_NON_SPEECH.fullmatch(word))


def normalize_text(text: str) -> str:
    """Drop non-word tokens (``[unk]``), collapse whitespace, drop the spaces Vosk puts next to Chinese/Japanese.

    ``"我 想 查 一下 iphone 订单"`` -> ``"我想查一下iphone订单"``; Korean and Latin word spaces are kept.
    """
    t = _RUNS.sub(" ", _NON_SPEECH.sub(" ", text)).strip()
    t = _SPACE_AFTER.sub("", t)
    return _SPACE_BEFORE.sub("", t)
