"""Sound-alike features: a recogniser that writes 快地 for 快递 or 退获 for 退货 still says the same syllables.

A pack opts in with ``phonetic: pinyin`` in ``pack.yaml``; the classifier then also sees toneless syllable
bigrams (``p:tui_huo``), so a homophone error keeps most of an utterance's evidence.

A scheme's syllables come from the pack's table ``ivr/lang/<pack>/phonetic/<scheme>.txt``: one line per code point
of the CJK Unified Ideographs (U+4E00-U+9FFF), empty where the character has no reading. The ``pinyin`` table is
pypinyin's reading of each character, written by ``scripts/make_pinyin_table.py`` and checked against pypinyin by
tests/test_nlu_phonetic.py; reading it costs ~5 ms where importing pypinyin's dictionaries cost ~0.5 CPU-s at
every start.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

SCHEMES = ("pinyin",)
FIRST, LAST = 0x4E00, 0x9FFF  # the code points a table covers, one line each
LANG_DIR = Path(__file__).resolve().parents[2] / "lang"


@cache
def table(scheme: str) -> tuple[str, ...]:
    """The scheme's syllable per code point from ``FIRST`` (a pack's ``phonetic/<scheme>.txt``)."""
    paths = sorted(LANG_DIR.glob(f"*/phonetic/{scheme}.txt"))
    if not paths:
        raise FileNotFoundError(f"no language pack has a phonetic/{scheme}.txt table")
    rows = tuple(paths[0].read_text(encoding="utf-8").split("\n")[: LAST - FIRST + 1])
    if len(rows) != LAST - FIRST + 1:
        raise ValueError(f"{paths[0]}: {len(rows)} lines, expected {LAST - FIRST + 1} (U+4E00-U+9FFF)")
    return rows


def syllables(compact: str, scheme: str) -> list[str]:
    """One toneless syllable per character ('' for non-Chinese characters)."""
    if scheme != "pinyin":
        return []
    rows = table(scheme)
    return [rows[ord(c) - FIRST] if FIRST <= ord(c) <= LAST else "" for c in compact]


def bigram_features(compact: str, scheme: str | None) -> list[str]:
    """``p:a_b`` for each pair of neighbouring syllables of the space-free text."""
    if not scheme:
        return []
    sy = syllables(compact, scheme)
    return [f"p:{a}_{b}" for a, b in zip(sy, sy[1:], strict=False) if a and b]
