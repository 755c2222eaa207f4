"""Mandarin number reading (digits, cardinals, money, dates) and parsing of spoken digits and dates."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

# Phone style: 1 is read 幺 so it is not confused with 7 on a noisy line.
SAY_DIGIT = dict(zip("0123456789", "零幺二三四五六七八九", strict=True))
# Spoken digit characters -> Arabic digit (洞 = 0, 拐 = 7, 勾 = 9 are radio/phone habits).
DIGIT_CHARS = {
    **{c: "0" for c in "零〇洞0"}, **{c: "1" for c in "幺一壹1"}, **{c: "2" for c in "二两贰2"},
    **{c: "3" for c in "三叁3"}, **{c: "4" for c in "四肆4"}, **{c: "5" for c in "五伍5"},
    **{c: "6" for c in "六陆6"}, **{c: "7" for c in "七柒拐7"}, **{c: "8" for c in "八捌8"},
    **{c: "9" for c in "九玖勾9"},
}
_DIGIT_CLASS = "".join(DIGIT_CHARS)
_CN_NUM_CLASS = "零〇一二两三四五六七八九十百千万幺0-9"
# Words containing a digit character that are not numbers ("查一下", "一直", "第一").
NOT_NUMBER_WORDS = (
    "一下", "一点", "一直", "一样", "一般", "一些", "一共", "一定", "一起", "一会", "一遍", "一次", "一趟",
    "一句", "一声", "一旦", "一切", "一边", "一块儿", "统一", "万一", "唯一", "第一", "一模一样", "十分",
    "三番五次", "乱七八糟", "七天无理由", "一天到晚", "两天", "三天", "一天", "一周", "两周", "几天",
    "拐弯", "勾选", "洞口", "一口价", "五星", "一星", "二手", "一元",
)
# Self-correction markers inside a number: "三八不是三九", "不是三是四", "幺二三 不对 幺二四".
_NOT = ("不是",)
_RESTATE = ("不对不对", "不对", "说错了", "错了", "哦不", "重说", "应该是", "更正一下", "更正", "我是说")
_GLUE = ("是", "嗯", "呃", "额", "啊", "那个", "就是", "然后", "再", "呢", "吧")


def say_digits(digits: str) -> str:
    """'13800' -> '幺三八零零' (non-digits are skipped)."""
    return "".join(SAY_DIGIT[c] for c in digits if c in SAY_DIGIT)


def say_number(n: int) -> str:
    """1024 -> '一千零二十四'; negative numbers start with 负."""
    import cn2an  # on first use: its import compiles ~0.3 CPU-s of patterns, not needed to start the service

    return cn2an.an2cn(int(n))


def say_amount(cents: int) -> str:
    """12990 -> '一百二十九元九角'; 5 -> '五分'; 12905 -> '一百二十九元零五分'."""
    cents = int(cents)
    sign = "负" if cents < 0 else ""
    cents = abs(cents)
    yuan, jiao, fen = cents // 100, cents // 10 % 10, cents % 10
    parts = []
    if yuan or (not jiao and not fen):
        parts.append(f"{say_number(yuan)}元")
    if jiao:
        parts.append(f"{say_number(jiao)}角")
    if fen:
        parts.append(("零" if yuan and not jiao else "") + f"{say_number(fen)}分")
    return sign + "".join(parts)


_WEEKDAYS = "一二三四五六日"


def say_date(d: date, today: date | None = None) -> str:
    """Relative words near today ('今天', '明天', '后天', '昨天', '前天'), else '十一月二十五日'."""
    today = today or date.today()
    rel = {0: "今天", 1: "明天", 2: "后天", -1: "昨天", -2: "前天"}.get((d - today).days)
    if rel:
        return rel
    md = f"{say_number(d.month)}月{say_number(d.day)}日"
    if d.year != today.year:
        return f"{say_digits(str(d.year)).replace('幺', '一')}年{md}"
    return md


def parse_number(text: str) -> int | None:
    """'二十三' / '23' / '两' / '一百零八' -> int; None when the text is not a number."""
    t = unicodedata.normalize("NFKC", text or "").strip().replace("幺", "一")
    if not t:
        return None
    if t.isdigit():
        return int(t)
    if not re.fullmatch(f"[{_CN_NUM_CLASS}]+", t):
        return None
    import cn2an

    try:
        v = cn2an.cn2an(t, "smart")
    except (ValueError, KeyError, IndexError):
        return None
    return int(v) if float(v).is_integer() else None


@dataclass(frozen=True, slots=True)
class DigitSpan:
    """A number said digit by digit: where it is in the (cleaned) text and its digits after corrections."""

    start: int
    end: int
    digits: str
    corrected: bool = False


def _clean_for_digits(text: str) -> str:
    t = unicodedata.normalize("NFKC", text or "").lower()
    t = re.sub(r"[\s,，。.、;；:：!！?？\-_/()（）\[\]]+", "", t)
    for w in NOT_NUMBER_WORDS:
        if w in t:
            t = t.replace(w, "|" * len(w))
    # "三个八" -> "888", "双八" -> "88"
    t = re.sub(f"([两二三四五2-5])个([{_DIGIT_CLASS}])",
               lambda m: m.group(2) * int(DIGIT_CHARS[m.group(1)]), t)
    t = re.sub(f"双([{_DIGIT_CLASS}])", lambda m: m.group(1) * 2, t)
    return t


def _tokens(t: str) -> list[tuple[str, str, int, int]]:
    """(kind, value, start, end) with kind in digits/not/restate/glue/word."""
    out: list[tuple[str, str, int, int]] = []
    i = 0
    markers = sorted([(m, "not") for m in _NOT] + [(m, "restate") for m in _RESTATE] + [(m, "glue") for m in _GLUE],
                     key=lambda x: -len(x[0]))
    while i < len(t):
        if t[i] in DIGIT_CHARS:
            j = i
            while j < len(t) and t[j] in DIGIT_CHARS:
                j += 1
            out.append(("digits", "".join(DIGIT_CHARS[c] for c in t[i:j]), i, j))
            i = j
            continue
        for m, kind in markers:
            if t.startswith(m, i):
                out.append((kind, m, i, i + len(m)))
                i += len(m)
                break
        else:
            if out and out[-1][0] == "word" and out[-1][3] == i:
                k, v, s, _ = out[-1]
                out[-1] = (k, v + t[i], s, i + 1)
            else:
                out.append(("word", t[i], i, i + 1))
            i += 1
    return out


def _apply_corrections(group: list[tuple[str, str, int, int]]) -> tuple[str, bool]:
    digits, mode, rejected, corrected = "", None, "", False
    for kind, value, _s, _e in group:
        if kind == "digits":
            if mode == "not":
                rejected, mode = value, "rejected"
            elif mode == "rejected_is":
                corrected = True
                if digits.endswith(rejected):
                    digits = digits[: len(digits) - len(rejected)] + value
                elif rejected and rejected in digits:
                    k = digits.rfind(rejected)
                    digits = digits[:k] + value + digits[k + len(rejected):]
                else:
                    digits += value
                mode = None
            elif mode == "restate" and digits:
                corrected = True
                digits = value if len(value) >= len(digits) else digits[: len(digits) - len(value)] + value
                mode = None
            else:
                digits += value
                mode = None
        elif kind == "not":
            mode = "not"
        elif kind == "restate":
            mode = "restate"
        elif kind == "glue" and value == "是" and mode == "rejected":
            mode = "rejected_is"
    if mode in ("rejected", "rejected_is") and rejected:
        corrected = True  # "三八不是三九": the rejected alternative is dropped
    return digits, corrected


def digit_spans(text: str, min_len: int = 1) -> list[DigitSpan]:
    """Numbers said digit by digit in ``text``, self-corrections applied, at least ``min_len`` digits each.

    Single digit characters inside words ("查一下", "第一") are not numbers. Positions refer to the text after
    punctuation and spaces are removed.
    """
    t = _clean_for_digits(text)
    toks = _tokens(t)
    spans: list[DigitSpan] = []
    group: list[tuple[str, str, int, int]] = []

    def flush() -> None:
        if any(k == "digits" for k, *_ in group):
            digits, corrected = _apply_corrections(group)
            first = next(s for k, _v, s, _e in group if k == "digits")
            last = max(e for k, _v, _s, e in group if k == "digits")
            if len(digits) >= min_len:
                spans.append(DigitSpan(first, last, digits, corrected))
        group.clear()

    for tok in toks:
        if tok[0] == "word":
            flush()
        else:
            group.append(tok)
    flush()
    return spans


def parse_digits(text: str) -> str:
    """Spoken or Arabic digits -> '138...'; handles 幺/两/洞, '三个八', and self-corrections."""
    spans = digit_spans(text)
    if len(spans) > 1:  # ignore stray single digits next to a real number ("第二个 幺三八零零")
        spans = [s for s in spans if len(s.digits) > 1] or spans
    return "".join(s.digits for s in spans)


# --- dates --------------------------------------------------------------------------------------------
_REL_DAYS = (("大后天", 3), ("大前天", -3), ("后天", 2), ("前天", -2), ("明天", 1), ("明儿", 1), ("明日", 1),
             ("今天", 0), ("今儿", 0), ("今日", 0), ("昨天", -1), ("昨儿", -1), ("昨日", -1))
_NUM = f"[{_CN_NUM_CLASS}]{{1,4}}"
_MONTH_DAY = re.compile(f"({_NUM})月(份)?({_NUM})(号|日)")
_DAY = re.compile(f"(?<![月单机尾账型号码])({_NUM})(号|日)(?![码])")
_WEEK = re.compile("(下下|下个|下|上个|上|这个|这|本)?(周|星期|礼拜)([一二三四五六日天1-7])")


def parse_date(text: str, today: date | None = None) -> date | None:
    """The first date mentioned: '明天', '下周三', '十一月二十五号', '25号' -> date; None if none or invalid."""
    today = today or date.today()
    t = unicodedata.normalize("NFKC", text or "").replace(" ", "")
    for word, delta in _REL_DAYS:
        if word in t:
            return today + timedelta(days=delta)
    m = _WEEK.search(t)
    if m:
        wd = "一二三四五六日".find(m.group(3)) if m.group(3) not in "天7" else 6
        if m.group(3).isdigit() and m.group(3) != "7":
            wd = int(m.group(3)) - 1
        start = today - timedelta(days=today.weekday())
        prefix = m.group(1) or ""
        weeks = {"下下": 2, "下个": 1, "下": 1, "上个": -1, "上": -1}.get(prefix, 0)
        d = start + timedelta(weeks=weeks, days=wd)
        if not prefix and d < today:
            d += timedelta(weeks=1)  # a bare weekday that has passed means the coming one
        return d
    m = _MONTH_DAY.search(t)
    if m:
        month, day = parse_number(m.group(1)), parse_number(m.group(3))
        try:
            return date(today.year, month or 0, day or 0)
        except ValueError:
            return None
    m = _DAY.search(t)
    if m:
        day = parse_number(m.group(1))
        try:
            return date(today.year, today.month, day or 0)
        except ValueError:
            return None
    return None
