"""Write ivr/lang/zh_CN/phonetic/pinyin.txt: the toneless syllable of every CJK Unified Ideograph (U+4E00-U+9FFF).

The NLU's sound-alike features (ivr/dialog/nlu/phonetic.py) read this table instead of importing pypinyin at every
start (its dictionaries cost ~0.5 CPU-s to load). One line per code point in order, empty where pypinyin has no
reading; each is pypinyin's ``lazy_pinyin(ch, errors="ignore")`` (its most common reading, ü written v).
tests/test_nlu_phonetic.py checks the shipped table against pypinyin. Run: python scripts/make_pinyin_table.py
"""

from __future__ import annotations

from pathlib import Path

from pypinyin import lazy_pinyin

FIRST, LAST = 0x4E00, 0x9FFF
OUT = Path(__file__).resolve().parent.parent / "ivr" / "lang" / "zh_CN" / "phonetic" / "pinyin.txt"


def table() -> list[str]:
    out = []
    for cp in range(FIRST, LAST + 1):
        got = lazy_pinyin(chr(cp), errors="ignore")
        out.append(got[0] if got else "")
    return out


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(table()) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
