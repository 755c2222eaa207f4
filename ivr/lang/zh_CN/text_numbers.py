"""Numbers the voice spells out, written the way a Chinese shop's chat writes them (text channels only).

``共二千五百九十九元`` -> ``共2599元``, ``退款一百二十九元五角`` -> ``退款129.5元``, ``十二月七日`` -> ``12月7日``,
``晚上六点以后`` -> ``晚上6点以后``, ``一到三个工作日`` -> ``1-3个工作日``, ``三件`` -> ``3件``.
The word lists (measure words, phrases that stay as words, cue words) are the ``numbers`` block of
``text_channel.yaml``; this module holds the grammar. A numeral converts only when it is a whole, well-formed
cardinal (read back by :func:`numbers.say_number` exactly as written: ``三五天``, ``一两个``, ``万一`` stay) and is
followed by a unit it measures: ``一下``, ``一起``, ``第一``, ``十分抱歉`` have none and stay words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from ivr.lang.zh_CN.numbers import say_number

_NUMERAL_CHARS = "零〇一二两三四五六七八九十百千万亿"
_NUM = f"[{_NUMERAL_CHARS}]+"
_ONE_DIGIT = "[一二两三四五六七八九]"
_DIGIT = dict(zip("零〇一二两三四五六七八九", (0, 0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9), strict=True))
_ASCII_ALNUM = re.compile("[A-Za-z0-9]")
_MASK = 0xE000  # private-use characters stand in for the phrases that stay words


def cardinal(word: str) -> int | None:
    """A well-formed spoken cardinal ('二千五百九十九', '两万', '十二') -> int; None for anything else."""
    if not word or not re.fullmatch(_NUM, word):
        return None
    import cn2an  # on first use (see numbers.say_number)

    try:
        value = cn2an.cn2an(word, "normal")
    except (ValueError, KeyError, IndexError):
        return None
    if not float(value).is_integer():
        return None
    said = re.sub("两(?=[千百万亿])|^两$", "二", word).replace("〇", "零")
    return int(value) if say_number(int(value)) == said else None


def yuan(cents: int) -> str:
    """12950 -> '129.5', 259900 -> '2599', 12905 -> '129.05'."""
    sign, cents = ("-" if cents < 0 else ""), abs(cents)
    whole, frac = divmod(cents, 100)
    return f"{sign}{whole}" + (f".{frac:02d}".rstrip("0") if frac else "")


def _alternation(words: Iterable[str]) -> str:
    return "|".join(map(re.escape, sorted({str(w) for w in words}, key=len, reverse=True))) or "(?!)"


class Writer:
    """Rewrites the spelled numbers of one reply; built once per pack from the ``numbers`` block."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.keep = [str(w) for w in cfg.get("keep") or []]
        self.not_after = str(cfg.get("not_after", ""))
        self.one_stays = {str(u) for u in cfg.get("one_stays") or []}
        self.money_cues = tuple(str(w) for w in cfg.get("money_cues") or [])
        self.day_parts = tuple(str(w) for w in cfg.get("day_parts") or [])
        self.range_sep = str(cfg.get("range_sep", "-"))
        units = _alternation(cfg.get("units") or [])
        score = str(cfg.get("score_unit", ""))
        score_next = str(cfg.get("score_next", "$"))
        clock_next = _alternation(cfg.get("clock_next") or [])
        ranges = _alternation(cfg.get("range_words") or [])
        unit = f"(?P<unit>{units})" + (f"|(?P<score>{re.escape(score)})(?={score_next})" if score else "")
        self.rules: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str | None]]] = [
            (re.compile(f"百分之(?P<n>{_NUM})"), self._percent),
            (re.compile(f"(?P<neg>负)?(?P<y>{_NUM})元(?:(?P<j>{_ONE_DIGIT})角)?(?:零?(?P<f>{_ONE_DIGIT})分)?"),
             self._money),
            (re.compile(f"(?P<j>{_ONE_DIGIT})角(?:零?(?P<f>{_ONE_DIGIT})分)?|(?P<f2>{_ONE_DIGIT})分(?!钟)"),
             self._small_money),
            (re.compile(f"(?P<y>{_NUM})块(?:(?P<j>{_ONE_DIGIT})毛)?钱?|(?P<j2>{_ONE_DIGIT})毛钱"), self._kuai),
            (re.compile("(?P<y>[零〇一二三四五六七八九]{4})(?=年)"), self._year),
            (re.compile(f"(?P<m>{_NUM})月(?P<d>{_NUM})(?P<u>[日号])"), self._month_day),
            (re.compile(f"(?<=月)(?P<d>{_NUM})(?P<u>[日号])"), self._month_day),
            (re.compile(f"(?P<m>{_NUM})月(?!份?{_NUM}[日号])"), self._month_day),
            (re.compile(f"(?P<h>{_NUM})点(?:(?P<half>半)|(?P<min>{_NUM})分(?!钟)|(?P<sharp>整)|钟)?"
                        f"(?P<next>{clock_next})?"), self._clock),
            (re.compile(f"(?P<tenth>{_ONE_DIGIT})(?P<hundredth>{_ONE_DIGIT})?折"), self._discount),
            (re.compile(f"(?P<a>{_NUM})(?:{ranges})(?P<n>{_NUM})(?:{unit})"), self._count),
            (re.compile(f"(?P<n>{_NUM})(?:{unit})"), self._count),
        ]

    def __call__(self, text: str, keep: Iterable[str] = ()) -> str:
        masked: list[str] = []

        def mask(m: re.Match[str]) -> str:
            masked.append(m.group(0))
            return chr(_MASK + len(masked) - 1)

        def apply(m: re.Match[str], write: Callable[[re.Match[str]], str | None]) -> str:
            before = m.string[m.start() - 1] if m.start() else ""
            if before and (before in self.not_after or before in _NUMERAL_CHARS):
                return m.group(0)
            out = write(m)
            if out is None:
                return m.group(0)
            if before and 0 <= ord(before) - _MASK < len(masked):  # a kept phrase: its last character
                before = masked[ord(before) - _MASK][-1]
            return " " + out if before and _ASCII_ALNUM.match(before) and out[:1].isdigit() else out

        words = [w for w in (*self.keep, *keep) if w]
        out = re.sub(_alternation(words), mask, text) if words else text
        for pattern, write in self.rules:
            out = pattern.sub(lambda m, write=write: apply(m, write), out)
        if not masked:
            return out
        return re.sub(f"[{chr(_MASK)}-{chr(_MASK + len(masked) - 1)}]", lambda m: masked[ord(m.group(0)) - _MASK], out)

    # --- helpers ------------------------------------------------------------------------------------------
    def _after(self, m: re.Match[str], words: tuple[str, ...]) -> bool:
        return m.string[: m.start()].endswith(words) if words else False

    # --- rules --------------------------------------------------------------------------------------------
    def _percent(self, m: re.Match[str]) -> str | None:
        n = cardinal(m.group("n"))
        return None if n is None else f"{n}%"

    def _money(self, m: re.Match[str]) -> str | None:
        y = cardinal(m.group("y"))
        if y is None:
            return None
        cents = y * 100 + _DIGIT.get(m.group("j") or "零", 0) * 10 + _DIGIT.get(m.group("f") or "零", 0)
        return f"{yuan(-cents if m.group('neg') else cents)}元"

    def _small_money(self, m: re.Match[str]) -> str | None:
        """A bare 角/分 amount (under one yuan) only after a money word: '五分' alone is a rating."""
        if not self._after(m, self.money_cues) and not m.string.startswith("钱", m.end()):
            return None
        if m.group("f2"):
            return f"{yuan(_DIGIT[m.group('f2')])}元"
        return f"{yuan(_DIGIT[m.group('j')] * 10 + _DIGIT.get(m.group('f') or '零', 0))}元"

    def _kuai(self, m: re.Match[str]) -> str | None:
        if m.group("j2"):
            return f"{yuan(_DIGIT[m.group('j2')] * 10)}元"
        y = cardinal(m.group("y"))
        if y is None or (not m.group("j") and not m.group(0).endswith("钱")):
            return None  # '两块' alone is two pieces
        return f"{yuan(y * 100 + _DIGIT.get(m.group('j') or '零', 0) * 10)}元"

    def _year(self, m: re.Match[str]) -> str:
        return "".join(str(_DIGIT[c]) for c in m.group("y"))

    def _month_day(self, m: re.Match[str]) -> str | None:
        month = cardinal(m.group("m")) if m.groupdict().get("m") else None
        day = cardinal(m.group("d")) if m.groupdict().get("d") else None
        if m.groupdict().get("m") and not (month and 1 <= month <= 12):
            return None
        if m.groupdict().get("d") and not (day and 1 <= day <= 31):
            return None
        return (f"{month}月" if month else "") + (f"{day}{m.group('u')}" if day else "")

    def _clock(self, m: re.Match[str]) -> str | None:
        h = cardinal(m.group("h"))
        minute = cardinal(m.group("min")) if m.group("min") else None
        if h is None or h > 24 or (m.group("min") and (minute is None or minute > 59)):
            return None
        said_as_time = m.group("half") or m.group("min") or m.group("sharp") or "钟" in m.group(0)
        # '一点' / '两点' alone are 'a little' / 'two points': a clock time only after 上午, 晚上 ...
        if not (self._after(m, self.day_parts) or said_as_time or (m.group("next") and h > 2)):
            return None
        if m.group("half"):
            time = f"{h}:30"
        elif minute is not None:
            time = f"{h}:{minute:02d}"
        else:
            time = f"{h}点" + ("整" if m.group("sharp") else "")
        return time + (m.group("next") or "")

    def _discount(self, m: re.Match[str]) -> str:
        tenth, hundredth = _DIGIT[m.group("tenth")], m.group("hundredth")
        return f"{tenth}.{_DIGIT[hundredth]}折" if hundredth else f"{tenth}折"

    def _count(self, m: re.Match[str]) -> str | None:
        n = cardinal(m.group("n"))
        unit = m.group("unit") or m.group("score")
        if n is None:
            return None
        if m.groupdict().get("a"):
            a = cardinal(m.group("a"))
            if a is None or a >= n:
                return None
            return f"{a}{self.range_sep}{n}{unit}"
        if m.group("n") == "一" and unit in self.one_stays:
            return None
        return f"{n}{unit}"


def writer(cfg: dict[str, Any]) -> Writer:
    """The text-channel hook named by ``text_channel.yaml`` (``numbers.hook``)."""
    return Writer(cfg)
