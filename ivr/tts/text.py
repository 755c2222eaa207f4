"""Text preparation for synthesis: cleaning, length limits and sentence splitting.

Language-neutral: it works on Unicode categories and sentence/clause punctuation of CJK and Latin scripts.
Reading numbers digit by digit is the language pack's job (before text reaches TTS); digits left in the
text are read by espeak-ng as numbers, never dropped.
"""

from __future__ import annotations

import re
import unicodedata

from ivr.tts.base import TtsError

MAX_SYNTH_CHARS = 1000   # one synthesize() call (about 4 minutes of Mandarin speech)
MAX_STREAM_CHARS = 4000  # stream(): long replies go out sentence by sentence
TARGET_PIECE_CHARS = 40  # longer sentences are split at clause punctuation
MAX_PIECE_CHARS = 80     # ... and hard-cut if a clause has none

_SENTENCE_END = "。！？；!?;…\n"
_CLAUSE_END = "，、：,:"
# Sentence end: CJK/Latin terminators (with trailing closing quotes/brackets), or a Latin period before space/end.
_SENTENCE_RE = re.compile(r"[^" + re.escape(_SENTENCE_END) + r"]*?(?:[" + re.escape(_SENTENCE_END)
                          + r"]+[”’」』）)\"']*|\.(?=\s|$)|$)", re.S)
_CLAUSE_RE = re.compile(r"[^" + re.escape(_CLAUSE_END) + r"]*(?:[" + re.escape(_CLAUSE_END) + r"]+|$)")


def clean_text(text: str, limit: int = MAX_SYNTH_CHARS) -> str:
    """Normalise whitespace and drop control characters; raise TtsError for empty, unspeakable or too long text."""
    if not isinstance(text, str):
        raise TtsError(f"text must be a string, got {type(text).__name__}")
    if len(text) > limit:
        raise TtsError(f"text too long: {len(text)} characters (limit {limit}); send it in shorter parts")
    cleaned = "".join(_plain(c) for c in text)
    cleaned = re.sub(r"[ \t]+", " ", re.sub(r"\s*\n\s*", "\n", cleaned)).strip()
    if not cleaned:
        raise TtsError("nothing to say: the text is empty")
    if not has_words(cleaned):
        raise TtsError("nothing to say: the text has no letters or digits")
    return cleaned


def _plain(c: str) -> str:
    """Control/space characters become a space; digits of any script and full-width Latin letters become
    ASCII (espeak-ng silently skips full-width digits such as '１２３')."""
    cat = unicodedata.category(c)
    if c == "\n":
        return c
    if cat[0] in "CZ":
        return " "
    if cat == "Nd" and not c.isascii():
        return str(unicodedata.decimal(c))
    if "\uff21" <= c <= "\uff3a" or "\uff41" <= c <= "\uff5a":
        return chr(ord(c) - 0xFEE0)
    return c


def has_words(text: str) -> bool:
    """True if the text has at least one letter or digit (something a synthesiser can speak)."""
    return any(unicodedata.category(c)[0] in "LN" for c in text)


def split_sentences(text: str) -> list[str]:
    """Split cleaned text into speakable pieces: sentences, long ones further at clause marks, then hard cuts.

    Punctuation stays with its piece (it shapes intonation and pauses); pieces without words are merged
    into the previous piece.
    """
    pieces: list[str] = []
    for sentence in _SENTENCE_RE.findall(text):
        sentence = sentence.strip()
        if not sentence:
            continue
        parts = [sentence] if len(sentence) <= TARGET_PIECE_CHARS else _split_long(sentence)
        for part in parts:
            if pieces and not has_words(part):
                pieces[-1] += part
            elif part:
                pieces.append(part)
    return [p for p in pieces if has_words(p)]


def _split_long(sentence: str) -> list[str]:
    out: list[str] = []
    buf = ""
    for clause in _CLAUSE_RE.findall(sentence):
        if not clause:
            continue
        if buf and len(buf) + len(clause) > TARGET_PIECE_CHARS:
            out.append(buf)
            buf = ""
        buf += clause
        while len(buf) > MAX_PIECE_CHARS:
            cut = _cut_point(buf)
            out.append(buf[:cut])
            buf = buf[cut:].lstrip()
    if buf:
        out.append(buf)
    return [p.strip() for p in out if p.strip()]


def _cut_point(text: str) -> int:
    """Where to hard-cut an over-long clause: the last space before the limit, else the limit itself."""
    space = text.rfind(" ", TARGET_PIECE_CHARS // 2, MAX_PIECE_CHARS)
    return space + 1 if space > 0 else MAX_PIECE_CHARS
