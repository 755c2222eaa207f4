"""Two needs in one utterance ("查一下物流 顺便开个发票"): split at a connector, classify each part.

The lexicon's ``connectors`` (顺便, 另外, 还有 ...) mark where a second request may start. The split is kept only
when both parts are, on their own, confidently two *different* tasks; otherwise the whole utterance is one need
("收到货发现坏了 还有点脏 要退货" stays a return).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ivr.dialog.nlu.classifier import IntentClassifier

PART_CONFIDENCE = 0.5  # each part must be at least this sure of its task
WHOLE_SUPPORT = 0.05  # ... and the whole utterance must give each of the two tasks at least this probability


@dataclass(frozen=True, slots=True)
class TwoNeeds:
    first: str
    second: str
    first_confidence: float
    second_confidence: float
    parts: tuple[str, str]


class CompoundSplitter:
    """Finds a second task after a connector word."""

    def __init__(self, connectors: list[str], task_intents: tuple[str, ...]):
        words = sorted({str(c) for c in connectors if str(c)}, key=len, reverse=True)
        self._re = re.compile("|".join(map(re.escape, words))) if words else None
        self._tasks = set(task_intents)

    def split(self, focus: str, classifier: IntentClassifier, whole: dict[str, float]) -> TwoNeeds | None:
        """Two different confident tasks in ``focus`` (normalised, numbers masked), in the caller's order.

        ``whole``: the intent probabilities of the whole utterance; a part the whole barely supports is a story
        ("收到货发现坏了 还有点脏 要退货": the first part is not a request of its own).
        """
        if self._re is None:
            return None
        for m in self._re.finditer(focus):
            left, right = focus[:m.start()].strip(" ，,。"), focus[m.end():].strip(" ，,。")
            if len(left.replace(" ", "")) < 2 or len(right.replace(" ", "")) < 2:
                continue
            a, b = classifier.predict(left), classifier.predict(right)
            ia, ib = a.intent, b.intent
            pa, pb = a.probs[ia], b.probs[ib]
            if ia in self._tasks and ib in self._tasks and ia != ib and min(pa, pb) >= PART_CONFIDENCE \
                    and min(whole.get(ia, 0.0), whole.get(ib, 0.0)) >= WHOLE_SUPPORT:
                return TwoNeeds(ia, ib, pa, pb, (left, right))
        return None
