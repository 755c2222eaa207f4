"""The zh-CN (Mandarin, Simplified Chinese) language pack: normalisation, jieba tokens, number reading."""

from __future__ import annotations

import logging
import marshal
import os
import re
import sys
import tempfile
import threading
import unicodedata
from datetime import date
from functools import cached_property
from pathlib import Path

from ivr.lang import LanguagePack
from ivr.lang.zh_CN import numbers

log = logging.getLogger(__name__)

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_GAP = re.compile(f"(?<=[{_CJK}])\\s+(?=[{_CJK}])")
_DIGIT_GAP = re.compile(r"(?<=\d)\s+(?=\d)")
_NON_WORD = re.compile(f"[^{_CJK}a-z0-9\\s]+")
_DIGIT_RUN = re.compile(f"[{''.join(numbers.DIGIT_CHARS)}]{{3,}}")
# A character said 3+ times in a row is a stutter ("嗯嗯嗯", "我我我"), except digit words: "幺零零零零..." and
# "八八八八" are numbers and every repeat counts.
_STUTTER = re.compile(f"((?![{''.join(numbers.DIGIT_CHARS)}])[{_CJK}])\\1{{2,}}")


class _NoPkgResources:
    """A meta-path finder that refuses ``import pkg_resources`` in one thread (the one importing jieba)."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pkg_resources" and threading.get_ident() == self.thread:
            raise ModuleNotFoundError("pkg_resources is not loaded for jieba", name=name)
        return None


def _import_jieba():
    """``import jieba`` without pkg_resources when nothing loaded that yet: jieba._compat then opens its data files
    by path (the same files), which saves pkg_resources' ~0.2 CPU-s import (and its deprecation warning) at every
    start-up that warms the tokenizer. Only this thread's import is refused (another thread's, e.g. cn2an's, is
    not), and sys.meta_path is replaced, never changed in place, so imports running meanwhile are not disturbed."""
    if "jieba" in sys.modules or "pkg_resources" in sys.modules:
        import jieba

        return jieba
    guard = _NoPkgResources()
    sys.meta_path = [guard, *sys.meta_path]
    try:
        import jieba
    finally:
        sys.meta_path = [f for f in sys.meta_path if f is not guard]
    return jieba


def _load_cached_dictionary(jieba, tk) -> bool:
    """What ``Tokenizer.initialize()`` does for the default dictionary when jieba's cache file exists (same file,
    same data), except that the file is read whole before it is unmarshalled: ``marshal.load`` on a file object
    reads it a few bytes at a time, ~3x the CPU of ``marshal.loads`` (0.6 -> 0.2 s at every start-up that warms
    the tokenizer). False (nothing changed: the caller initialises as usual) for any other case or any error."""
    if tk.initialized or tk.dictionary != jieba.DEFAULT_DICT or tk.cache_file:
        return False
    path = os.path.join(tk.tmp_dir or tempfile.gettempdir(), "jieba.cache")
    try:
        with open(path, "rb") as f:
            freq, total = marshal.loads(f.read())
    except Exception:  # no cache yet, unreadable or not jieba's: initialize() rebuilds it
        return False
    if not isinstance(freq, dict):
        return False
    tk.FREQ, tk.total = freq, total
    tk.initialized = True
    return True


class Pack(LanguagePack):
    """Mandarin pack. Data in pack.yaml / lexicon.yaml / userdict.txt; code only for what data cannot say."""

    code = "zh-CN"

    def __init__(self, directory: Path):
        super().__init__(directory)
        self._jieba_lock = threading.Lock()
        self._tokenizer = None
        d = self.data
        self._placeholder = re.compile(r"\[(" + "|".join(map(re.escape, d.get("placeholders", {}))) + r")[a-z]?\]")
        self._boilerplate = [re.compile(p) for p in d.get("boilerplate", [])]
        dialect = d.get("dialect", {}) or {}
        self._dialect = re.compile("|".join(map(re.escape, sorted(dialect, key=len, reverse=True)))) if dialect else None
        self._dialect_map = dialect
        # a recogniser spaces every character ("不 晓 得"): a dialect word spelt over whole one-character tokens
        spaced = [w for w in sorted(dialect, key=len, reverse=True) if len(w) > 1]
        self._dialect_spaced = re.compile(
            "|".join(r"(?<!\S)" + " ".join(map(re.escape, w)) + r"(?!\S)" for w in spaced)) if spaced else None
        self._lead = re.compile(r"^(?:" + "|".join(d.get("fillers_leading", [])) + r")\s*")
        self._anywhere = re.compile("|".join(d.get("fillers_anywhere", []))) if d.get("fillers_anywhere") else None
        self._token_filler = re.compile("(?:" + "|".join(d.get("fillers_token", []) or ["(?!)"]) + ")")
        corr = sorted(d.get("corrections", []), key=len, reverse=True)
        self._corrections = re.compile("|".join(re.escape(c).replace(r"\ ", r"\s*") for c in corr)) if corr else None

    # --- text -----------------------------------------------------------------------------------------
    def clean(self, text: str) -> str:
        """Width/case folding, placeholders and symbols; punctuation becomes spaces (keeps word boundaries)."""
        t = unicodedata.normalize("NFKC", text or "").lower()
        t = self._placeholder.sub(lambda m: f" {self.data['placeholders'][m.group(1)]} ", t)
        for sym, word in (self.data.get("symbols") or {}).items():
            t = t.replace(sym, f" {word} ")
        t = _NON_WORD.sub(" ", t)
        return re.sub(r"\s+", " ", t).strip()

    def normalize(self, text: str) -> str:
        """ASR or chat text -> normal form: no spaces between CJK, standard words for dialect, fillers dropped."""
        t = self.clean(text)
        if self._dialect_spaced is not None:
            t = self._dialect_spaced.sub(lambda m: self._dialect_map[m.group(0).replace(" ", "")], t)
        if self._dialect is not None:
            t = self._dialect.sub(lambda m: self._dialect_map[m.group(0)], t)
        words = t.split(" ")
        kept = [w for w in words if not self._token_filler.fullmatch(w)]
        t = " ".join(kept) if kept else t
        t = _CJK_GAP.sub("", t)
        t = _DIGIT_GAP.sub("", t)
        t = _STUTTER.sub(r"\1", t)
        stripped = t
        while True:
            nxt = self._lead.sub("", stripped, count=1)
            if nxt == stripped:
                break
            stripped = nxt
        if self._anywhere is not None:
            stripped = self._anywhere.sub("", stripped)
        stripped = re.sub(r"\s+", " ", stripped).strip()
        return stripped or t  # a lone filler ("嗯") is an answer, keep it

    def mask_numbers(self, normalized: str, token: str = " xnum ") -> str:
        """Numbers said digit by digit (3+ digits) become one neutral token, so digits never sway an intent."""
        return re.sub(r"\s+", " ", _DIGIT_RUN.sub(token, normalized)).strip()

    def strip_boilerplate(self, normalized: str) -> str:
        """Remove pasted order cards and similar widget text that carries no intent."""
        t = normalized
        for p in self._boilerplate:
            t = p.sub(" ", t)
        return re.sub(r"\s+", " ", t).strip()

    def after_correction(self, normalized: str) -> str | None:
        """The part after the last self-correction marker ('我要退货 说错了 换货' -> '换货'), if any."""
        if self._corrections is None:
            return None
        last = None
        for m in self._corrections.finditer(normalized):
            last = m
        if last is None or last.start() == 0:
            return None
        rest = normalized[last.end():].strip()
        return rest if len(rest) >= 2 else None

    # --- tokens ---------------------------------------------------------------------------------------
    @cached_property
    def _jieba(self):
        jieba = _import_jieba()

        with self._jieba_lock:
            jieba.setLogLevel(logging.WARNING)
            tk = jieba.Tokenizer()
            if not _load_cached_dictionary(jieba, tk):
                tk.initialize()  # builds the prefix dictionary and writes jieba's cache file
            if self.user_dict_path.is_file():
                tk.load_userdict(str(self.user_dict_path))
            return tk

    def warm_up(self) -> None:
        """Load the tokenizer dictionary now (about 1 s) rather than on the first call."""
        self.tokenize("你好")

    def tokenize(self, text: str) -> list[str]:
        """jieba words of (normalised) text, without spaces."""
        return [w for w in self._jieba.lcut(text, HMM=True) if w.strip()]

    # --- numbers and dates ----------------------------------------------------------------------------
    def say_digits(self, digits: str) -> str:
        return numbers.say_digits(digits)

    def say_number(self, n: int) -> str:
        return numbers.say_number(n)

    def say_amount(self, cents: int) -> str:
        return numbers.say_amount(cents)

    def say_date(self, d: date, today: date | None = None) -> str:
        return numbers.say_date(d, today)

    def parse_digits(self, text: str) -> str:
        return numbers.parse_digits(self._dialect_free(text))

    def digit_spans(self, text: str, min_len: int = 1) -> list[numbers.DigitSpan]:
        """Numbers said digit by digit, with self-corrections applied (see :func:`numbers.digit_spans`)."""
        return numbers.digit_spans(self._dialect_free(text), min_len)

    def parse_number(self, text: str) -> int | None:
        return numbers.parse_number(text)

    def parse_date(self, text: str, today: date | None = None) -> date | None:
        return numbers.parse_date(self._dialect_free(text), today)

    def _dialect_free(self, text: str) -> str:
        t = unicodedata.normalize("NFKC", text or "")
        if self._dialect is not None:
            t = self._dialect.sub(lambda m: self._dialect_map[m.group(0)], t)
        return t
