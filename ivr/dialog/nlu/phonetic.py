"""Sound-alike features: a recogniser that writes 快地 for 快递 or 退获 for 退货 still says the same syllables.

A pack opts in with ``phonetic: pinyin`` in ``pack.yaml``; the classifier then also sees toneless syllable
bigrams (``p:tui_huo``), so a homophone error keeps most of an utterance's evidence.
"""

from __future__ import annotations

from functools import lru_cache

SCHEMES = ("pinyin",)


@lru_cache(maxsize=32768)
def _pinyin(ch: str) -> str:
    from pypinyin import lazy_pinyin  # imported on first use: packs without `phonetic` never load it

    out = lazy_pinyin(ch, errors="ignore")
    return out[0] if out else ""


def syllables(compact: str, scheme: str) -> list[str]:
    """One toneless syllable per character ('' for non-Chinese characters)."""
    if scheme != "pinyin":
        return []
    return [_pinyin(c) if "\u4e00" <= c <= "\u9fff" else "" for c in compact]


def bigram_features(compact: str, scheme: str | None) -> list[str]:
    """``p:a_b`` for each pair of neighbouring syllables of the space-free text."""
    if not scheme:
        return []
    sy = syllables(compact, scheme)
    return [f"p:{a}_{b}" for a, b in zip(sy, sy[1:], strict=False) if a and b]
