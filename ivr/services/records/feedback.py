"""The feedback loop: caller utterances the bot did not understand, with context, grouped, as training candidates.

An utterance is *unrecognised* when a spoken caller turn (``kind`` speech, with text) got intent ``other``, was
answered with the ``no_match`` action or with a clarifying question (``clarify`` action: the caller's answer,
the next turn, tells what was meant), or had an NLU confidence below ``threshold`` (default 0.45, the dialogue's
``min_intent_confidence``). Each keeps its context: the bot prompt it answered, the dialogue state, and the intent
of the caller's *next* turn when that one was understood as a request (what the caller meant, said again
differently; answers such as yes/no/goodbye do not count).

Grouping: texts are normalised (punctuation and spaces dropped), identical ones merged, then grouped greedily by
cosine similarity of character 1-2-gram TF-IDF vectors (scikit-learn): most frequent text first, each text joins the
first group whose leader is at least ``similarity`` (0.5) alike. ``suggested_intent`` is the majority of the
NLU's own low-confidence guesses and the callers' understood rephrasings.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, or_, select

from ivr.services.db import transaction
from ivr.services.records.store import _aware
from ivr.services.records.tables import CallRow, TurnRow

DEFAULT_THRESHOLD = 0.45
DEFAULT_SIMILARITY = 0.5
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)
_NOT_AN_INTENT = ("", "other", "no_match", "dtmf", "no_input", "start")
_DIALOGUE_ACTS = ("greeting", "thanks", "goodbye", "affirm", "deny")  # answers, not a rephrased request


@dataclass(slots=True)
class Utterance:
    """One unrecognised caller utterance and where it was said."""

    call_id: str
    index: int
    at: datetime
    text: str
    intent: str
    confidence: float | None
    state: str = ""
    prompt: str = ""  # the bot's previous line, which the caller answered
    rephrased_as: str = ""  # intent of the caller's next turn, when that one was understood


@dataclass(slots=True)
class Group:
    """Similar unrecognised utterances: a labelled-training candidate."""

    text: str
    items: list[Utterance] = field(default_factory=list)
    suggested_intent: str = ""

    @property
    def count(self) -> int:
        return len(self.items)

    def variants(self) -> list[tuple[str, int]]:
        return Counter(u.text for u in self.items).most_common()

    def call_ids(self, limit: int = 5) -> list[str]:
        return list(dict.fromkeys(u.call_id for u in sorted(self.items, key=lambda u: u.at, reverse=True)))[:limit]

    def as_dict(self, examples: int = 5) -> dict[str, Any]:
        states = Counter(u.state for u in self.items if u.state).most_common(3)
        prompts = Counter(u.prompt for u in self.items if u.prompt).most_common(2)
        conf = [u.confidence for u in self.items if u.confidence is not None]
        return {
            "text": self.text, "suggested_intent": self.suggested_intent, "count": self.count,
            "variants": [{"text": t, "count": n} for t, n in self.variants()[:20]],
            "example_call_ids": self.call_ids(examples), "states": [s for s, _ in states],
            "prompts": [p for p, _ in prompts], "mean_confidence": sum(conf) / len(conf) if conf else None,
            "first_seen": min(u.at for u in self.items).isoformat(),
            "last_seen": max(u.at for u in self.items).isoformat(),
        }


def normalise(text: str) -> str:
    return _PUNCT.sub("", text or "").lower()


def collect(url: str, filters: Any, threshold: float = DEFAULT_THRESHOLD) -> list[Utterance]:
    """Unrecognised utterances of the calls ``filters`` (a :class:`~ivr.services.records.stats.Filters`) selects."""
    unrec = or_(TurnRow.intent.in_(("other", "no_match")), TurnRow.confidence < threshold,
                cast(TurnRow.actions, String).like('%"no_match"%'),
                cast(TurnRow.actions, String).like('%"clarify"%'))  # the bot had to ask which task was meant
    with transaction(url) as s:
        rows = s.execute(select(TurnRow.call_id, TurnRow.idx, TurnRow.at, TurnRow.caller_text, TurnRow.intent,
                                TurnRow.confidence, TurnRow.state).join(CallRow)
                         .where(*filters.base(), TurnRow.kind == "speech", TurnRow.caller_text != "", unrec)
                         .order_by(TurnRow.call_id, TurnRow.idx)).all()
        ids = sorted({r[0] for r in rows})
        ctx: dict[tuple[str, int], tuple[str, str, str, float | None]] = {}
        for i in range(0, len(ids), 500):
            for cid, idx, kind, bot, intent, conf in s.execute(
                    select(TurnRow.call_id, TurnRow.idx, TurnRow.kind, TurnRow.bot_text, TurnRow.intent,
                           TurnRow.confidence).where(TurnRow.call_id.in_(ids[i:i + 500]))):
                ctx[(cid, idx)] = (kind, bot, intent, conf)
    out = []
    for cid, idx, at, text, intent, conf, state in rows:
        if "*" in text:  # a masked answer (verification secret, phone): a credential, not training material
            continue
        prev = ctx.get((cid, idx - 1))
        nxt = ctx.get((cid, idx + 1))
        rephrased = ""
        if nxt and nxt[0] == "speech" and nxt[2] not in _NOT_AN_INTENT + _DIALOGUE_ACTS \
                and (nxt[3] is None or nxt[3] >= threshold):
            rephrased = nxt[2]
        out.append(Utterance(cid, idx, _aware(at), text, intent, conf, state, prev[1] if prev else "", rephrased))
    return out


def group(utterances: list[Utterance], similarity: float = DEFAULT_SIMILARITY) -> list[Group]:
    """Similar utterances together, biggest group first (ties: alphabetical)."""
    by_norm: dict[str, list[Utterance]] = {}
    for u in utterances:
        key = normalise(u.text)
        if key:
            by_norm.setdefault(key, []).append(u)
    if not by_norm:
        return []
    keys = sorted(by_norm, key=lambda k: (-len(by_norm[k]), k))
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True).fit_transform(keys)
    leaders: list[int] = []
    members: dict[int, list[int]] = {}
    for i in range(len(keys)):
        if leaders:
            sims = (vec[leaders] @ vec[i].T).toarray().ravel()
            best = int(sims.argmax())
            if sims[best] >= similarity:
                members[leaders[best]].append(i)
                continue
        leaders.append(i)
        members[i] = [i]
    groups = []
    for lead in leaders:
        items = [u for m in members[lead] for u in by_norm[keys[m]]]
        text = Counter(u.text for u in by_norm[keys[lead]]).most_common(1)[0][0]
        groups.append(Group(text, items, _suggest(items)))
    groups.sort(key=lambda g: (-g.count, g.text))
    return groups


def _suggest(items: list[Utterance]) -> str:
    votes = Counter()
    for u in items:
        if u.intent not in _NOT_AN_INTENT:
            votes[u.intent] += 1
        if u.rephrased_as:
            votes[u.rephrased_as] += 2  # the caller's own rephrasing is the better witness
    return min(votes, key=lambda k: (-votes[k], k)) if votes else ""
