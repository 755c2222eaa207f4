"""Constrained recognition for expected answers: Vosk grammars from the language pack's word lists.

When the bot expects a known kind of answer (an order number, the phone's last four digits, yes/no, a rating, a
menu choice), the recogniser is limited to that vocabulary (``KaldiRecognizer(model, rate, grammar)``), so digit
strings come back as digit words instead of look-alike words. Every grammar also holds the pack's control phrases
(human, repeat, don't know ...) and ``[unk]``: anything else comes back as ``[unk]``, and then the *free-speech
fallback* applies: :class:`GrammarSwitch` drops the grammar for the next attempt, and :func:`choose` takes a
free-speech result of the same audio where one exists (offline, benchmarks).

Word lists: ``asr_grammar.yaml`` in the language pack (``kinds: {kind: [phrases]}``, ``always: [phrases]``,
``digits: {word: digit}``). Models with a static graph (large models) ignore grammars; small models (with
``graph/Gr.fst``) support them; :func:`supports_grammar` tells.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

UNK = "[unk]"
KINDS = ("order_id", "phone_tail", "digits", "yesno", "rating", "menu")
# The dialogue's expectation (NluResult expected / BotReply.expect) -> grammar kind.
_EXPECTATION_KIND = {"order_id": "order_id", "phone_tail": "phone_tail", "digits": "digits", "phone": "digits",
                     "yesno": "yesno", "rating": "rating", "menu": "menu"}


class GrammarError(ValueError):
    """The grammar word lists are missing or malformed."""


@dataclass(frozen=True)
class GrammarSet:
    """Phrase lists per expected-answer kind, plus the phrases every grammar keeps (control words)."""

    kinds: dict[str, tuple[str, ...]]
    always: tuple[str, ...] = ()
    digit_words: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: Path) -> GrammarSet:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise GrammarError(f"cannot read ASR grammar lists {path}: {e}") from None
        kinds = data.get("kinds")
        if not isinstance(kinds, dict) or not kinds:
            raise GrammarError(f"{path}: expected 'kinds: {{kind: [phrases]}}'")
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise GrammarError(f"{path}: unknown grammar kinds {sorted(unknown)} (known: {', '.join(KINDS)})")
        return cls({k: tuple(str(p) for p in v or []) for k, v in kinds.items()},
                   tuple(str(p) for p in data.get("always") or []),
                   {str(k): str(v) for k, v in (data.get("digits") or {}).items()})

    @classmethod
    def for_pack(cls, pack: Any) -> GrammarSet | None:
        """The pack's lists (``asr_grammar.yaml``), or None when the pack has none."""
        path = Path(pack.dir) / "asr_grammar.yaml"
        return cls.from_file(path) if path.is_file() else None

    def phrases(self, kind: str | None) -> list[str] | None:
        """The Vosk grammar for ``kind`` (None: free speech). Always ends with ``[unk]``."""
        if kind is None or kind not in self.kinds:
            return None
        out = list(dict.fromkeys((*self.kinds[kind], *self.always)))
        return [p for p in out if p != UNK] + [UNK]

    def for_expectation(self, expected: str | None) -> list[str] | None:
        """The grammar for what the dialogue asked for (``order_id``, ``phone_tail``, ``yesno`` ...), else None."""
        return self.phrases(_EXPECTATION_KIND.get(expected or ""))

    def digits(self, text: str) -> str:
        """The digit string a (grammar) result spells: digit words and ASCII digits, in order."""
        out = []
        for w in text.split():
            if w.isdigit():
                out.append(w)
            elif w in self.digit_words:
                out.append(self.digit_words[w])
            else:
                for ch in w:  # words written together ("일이삼")
                    if ch in self.digit_words:
                        out.append(self.digit_words[ch])
        return "".join(out)


def is_unknown(text: str) -> bool:
    """The constrained result did not catch the answer: nothing, or ``[unk]`` in it."""
    return not text.strip() or UNK in text


def choose(grammar_text: str, free_text: str | None) -> str:
    """Grammar result unless it is unknown; then the free-speech result (when there is one)."""
    if not is_unknown(grammar_text):
        return grammar_text
    return free_text if free_text is not None else grammar_text.replace(UNK, "").strip()


def supports_grammar(model_dir: Path) -> bool:
    """Small Vosk models (a lookahead graph, ``graph/Gr.fst``) accept runtime grammars; static-graph ones do not."""
    return (Path(model_dir) / "graph" / "Gr.fst").is_file()


class GrammarSwitch:
    """Per call: which grammar the next utterance gets. An ``[unk]`` answer turns the grammar off for the next
    attempt at the same question (the free-speech fallback), so a caller who says something else is heard."""

    def __init__(self, grammars: GrammarSet | None):
        self.grammars = grammars
        self._expected: str | None = None
        self._fallback = False

    def next_grammar(self, expected: str | None) -> list[str] | None:
        """Call when the bot has asked its question; ``expected`` is the dialogue's expectation."""
        if expected != self._expected:
            self._expected, self._fallback = expected, False
        if self.grammars is None or self._fallback:
            return None
        return self.grammars.for_expectation(expected)

    def heard(self, text: str, constrained: bool) -> None:
        """Call with each final transcript; an unknown constrained result asks for free speech next time."""
        if constrained and is_unknown(text):
            self._fallback = True
