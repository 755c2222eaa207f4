"""Natural-language understanding for the hotline: intent + slots from recogniser text.

Method (each step is explainable with ``ivr nlu explain TEXT``):

1. The language pack normalises the text (spacing, fillers, dialect words, placeholders, pasted order cards)
   and, after a self-correction ("我要退货 说错了 换货"), keeps what follows it.
2. Whole-utterance rules from the lexicon decide control intents (repeat, main_menu, human_agent, wait,
   dont_know); an utterance made only of social words (是的 / 不用了 / 谢谢 / 再见 / 你好) is decided by priority.
3. Otherwise a logistic-regression classifier over jieba words, character bigrams and lexicon concepts, trained at
   start-up from the pack's ``nlu/train.yaml``, scores all intents.
4. Context: an utterance without any task word borrows the topic of the previous agent turn; after a yes/no
   question (or ``expected='yesno'``) a leading yes/no word decides.
5. Slots come from rules and lexicons (see :mod:`ivr.dialog.nlu.slots`), helped by ``expected``.

Intents: order_status, logistics, return_request, exchange_request, refund_status, cancel_order, change_address,
invoice, price_promotion, product_question, complaint, human_agent, greeting, thanks, goodbye, affirm, deny, other;
control intents: repeat, main_menu, wait (caller needs a moment), dont_know (caller cannot give what was asked).
An utterance that only gives information (digits, a date) has intent ``other`` with the values in slots.
"""

from __future__ import annotations

import re
import threading
from datetime import date
from functools import cache
from typing import Any

from ivr.dialog.nlu.classifier import SOCIAL_INTENTS, IntentClassifier, softmax_mix, train
from ivr.dialog.nlu.compound import CompoundSplitter
from ivr.dialog.nlu.slots import SlotExtractor
from ivr.dialog.types import NluResult
from ivr.lang import LanguagePack, get_pack

TASK_INTENTS = (
    "order_status", "logistics", "return_request", "exchange_request", "refund_status", "cancel_order",
    "change_address", "invoice", "price_promotion", "product_question", "complaint", "human_agent",
)
INTENTS = (*TASK_INTENTS, "greeting", "thanks", "goodbye", "affirm", "deny", "other")
CONTROL_INTENTS = ("repeat", "main_menu", "wait", "dont_know")
ALL_INTENTS = INTENTS + CONTROL_INTENTS
EXPECTATIONS = ("yesno", "digits", "order_id", "phone_tail", "phone", "rating", "date", "speech")

SOCIAL_KEEP = 0.6  # a small-talk reading this sure is not overridden by the previous turn's topic
CONTEXT_WEIGHT = 0.5  # share of the previous agent turn's topic for an utterance without a task word
RULE_CONFIDENCE = 0.97
SOCIAL_CONFIDENCE = 0.95
# Calibrated on the project's own held-out utterances (docs/nlu.md): a task guess below CLARIFY_BELOW with a
# runner-up task of at least CLARIFY_SECOND is asked about ("您是想查物流，还是申请退货？") instead of acted on.
CLARIFY_BELOW = 0.55
CLARIFY_SECOND = 0.15
CLARIFY_OTHER_TOP = 0.3
# after a yes/no question a leading yes/no word decides, unless the rest is this surely something else
SETTLED_INTENTS = ("other", "thanks", "goodbye")
SETTLED_KEEP = 0.5  # an "other" reading with two tasks at least this and CLARIFY_SECOND is asked about too
# after a yes/no question, a refusal whose task reading (below this) is one of the question's topics is a no
REFUSAL_TOPIC_BELOW = 0.8
# after a yes/no question, a yes followed by a request the classifier reads this surely is that request
REQUEST_AFTER_YES = 0.6


class Nlu:
    """Intent and slot parser for one language. Thread-safe after construction."""

    def __init__(self, language: str = "zh-CN"):
        self.pack: LanguagePack = get_pack(language)
        self.language = language
        lex = self.pack.lexicon
        self._full_rules = [(r["intent"], re.compile(f"(?:{r['pattern']})")) for r in lex.get("full_rules", [])]
        social = lex.get("social", {}) or {}
        self._social_priority: list[str] = list(social.get("priority", []))
        words: dict[str, str] = {}
        for cls in self._social_priority:
            for w in social.get(cls, []) or []:
                words.setdefault(str(w), cls)
        for w in social.get("particles", []) or []:
            words.setdefault(str(w), "")
        self._social_words = sorted(words.items(), key=lambda kv: -len(kv[0]))
        self._negators = tuple(str(n) for n in social.get("negators", []) or [] if str(n))
        self._topical = set(lex.get("topical_concepts", []))
        self._yesno_endings = sorted((str(e) for e in lex.get("yesno_question_endings", [])), key=len, reverse=True)
        self.slots = SlotExtractor(self.pack)
        connectors = [str(c) for c in lex.get("connectors", []) or [] if str(c)]
        self._splitter = CompoundSplitter(connectors, TASK_INTENTS)
        # a recogniser spaces connectors ("还有 就是"): joined before normalisation, so their filler part stays
        self._spaced_connectors = re.compile("|".join(
            r"\s*".join(map(re.escape, c)) for c in sorted(connectors, key=len, reverse=True) if len(c) > 1) or "(?!)")
        self._lookup_words = [str(w) for w in lex.get("lookup_words", []) or []]
        self._refusals = [str(w) for w in lex.get("refusals", []) or []]
        self._lock = threading.Lock()
        self.classifier: IntentClassifier = train(self.pack)

    # --- public ---------------------------------------------------------------------------------------
    def parse(self, text: str, prev_agent_text: str | None = None, expected: str | None = None,
              today: date | None = None) -> NluResult:
        """Understand one caller utterance. ``expected`` hints what the dialogue asked for (see EXPECTATIONS)."""
        raw = text if isinstance(text, str) else ""
        pack = self.pack
        norm = pack.normalize(self._spaced_connectors.sub(lambda m: re.sub(r"\s+", "", m.group()), raw))
        core = pack.strip_boilerplate(norm)
        corrected = pack.after_correction(core)
        focus = pack.mask_numbers(corrected or core)
        compact = (corrected or core).replace(" ", "")
        if expected is None and prev_agent_text and self._is_yesno_question(prev_agent_text):
            expected = "yesno"
        slot_trace: list[str] = []
        slots = self.slots.extract(norm, expected, today, slot_trace)
        expl: dict[str, Any] = {
            "normalized": norm, "core": core, "correction": corrected, "expected": expected,
            "slot_rules": slot_trace,
        }
        intent, conf, probs = self._decide(compact, focus, prev_agent_text, expected, slots, expl)
        expl["decided_by"] = expl.get("decided_by", "classifier")
        if probs:
            expl["scores"] = {k: round(v, 3) for k, v in sorted(probs.items(), key=lambda kv: -kv[1])[:5]}
        return NluResult(text=raw, intent=intent, confidence=round(float(conf), 3), slots=slots, explanation=expl)

    def add_products(self, names: list[str]) -> None:
        """Product names from the shop catalogue become recognisable ``product`` slot values."""
        with self._lock:
            self.slots.add_products(names)

    # --- decision -------------------------------------------------------------------------------------
    def _decide(self, compact: str, focus: str, prev: str | None, expected: str | None,
                slots: dict[str, Any], expl: dict[str, Any]) -> tuple[str, float, dict[str, float]]:
        if not compact:
            expl["decided_by"] = "empty"
            return "other", 0.5, {}
        for intent, pattern in self._full_rules:
            if pattern.fullmatch(compact):
                expl["decided_by"] = f"rule:{intent}"
                expl["rule"] = pattern.pattern
                return intent, RULE_CONFIDENCE, {}
        social = self._social(compact)
        if social is not None:
            cls, seen = social
            expl["decided_by"] = "social_words"
            expl["social_words"] = seen
            return cls, SOCIAL_CONFIDENCE, {}
        info_slots = ("order_id", "phone_tail", "phone", "digits", "rating", "date") if expected else \
            ("order_id", "phone_tail", "phone")
        if any(k in slots for k in info_slots) and self._only_information(compact) \
                and not (expected is None and any(w in compact for w in self._lookup_words)):
            expl["decided_by"] = f"information_only:{expected or 'digits'}"
            return "other", 0.9, {}
        pred = self.classifier.predict(focus)
        probs = dict(pred.probs)
        expl["tokens"] = pred.tokens
        expl["concepts"] = pred.concepts
        topical = self._topical & set(pred.concepts)
        top = max(probs, key=probs.__getitem__)
        confident_social = top in SOCIAL_INTENTS and top != "other" and probs[top] >= SOCIAL_KEEP
        if prev and not confident_social and (not topical or top == "other"):
            prev_core = self.pack.strip_boilerplate(self.pack.normalize(prev))
            if prev_core:
                prev_pred = self.classifier.predict(prev_core)
                prev_topic = {k: v for k, v in prev_pred.probs.items() if k not in SOCIAL_INTENTS}
                total = sum(prev_topic.values())
                if total > 0 and self._topical & set(prev_pred.concepts):
                    prev_topic = {k: v / total for k, v in prev_topic.items()}
                    probs = softmax_mix(probs, prev_topic, CONTEXT_WEIGHT)
                    expl["context"] = {
                        "prev_agent_concepts": prev_pred.concepts,
                        "prev_topic": max(prev_topic, key=prev_topic.__getitem__),
                        "weight": CONTEXT_WEIGHT,
                    }
        intent = max(probs, key=probs.__getitem__)
        if expected == "yesno" and intent not in ("affirm", "deny") and not topical:
            lead = "deny" if self._ends_with_refusal(compact) else self._leading_social(compact)
            if lead in ("affirm", "deny"):
                if top in SETTLED_INTENTS and pred.probs[top] >= SETTLED_KEEP:  # "没事了 我自己弄好了"
                    expl["decided_by"] = f"yesno_settled:{top}"
                    expl.pop("context", None)
                    return top, pred.probs[top], dict(pred.probs)
                if lead == "affirm" and top in TASK_INTENTS and pred.probs[top] >= REQUEST_AFTER_YES:
                    expl["decided_by"] = f"yes_then_request:{top}"  # "对的 能不能改到周末再送"
                    expl.pop("context", None)
                    return top, pred.probs[top], dict(pred.probs)
                expl["decided_by"] = f"yesno_lead:{lead}"
                return lead, 0.85, probs
        # a task reading on the question's own topic after a refusal is a no ("不用了 就放快递柜吧" after
        # "需要帮您预约送货吗"); a new request ("不用了 我要换货") is served
        if expected == "yesno" and topical and prev and intent in TASK_INTENTS and probs[intent] < REFUSAL_TOPIC_BELOW \
                and self._refuses(compact) and intent in self._prev_tasks(prev):
            expl["decided_by"] = "yesno_refusal"
            return "deny", 0.8, probs
        expl["top_features"] = self.classifier.contributions(pred.features, intent)
        conf = probs[intent]
        if expected in (None, "speech"):
            two = self._splitter.split(focus, self.classifier, probs)
            if two is not None:
                expl["decided_by"] = "two_needs"
                expl["second_intent"] = two.second
                expl["parts"] = list(two.parts)
                return two.first, max(two.first_confidence, probs.get(two.first, 0.0)), probs
        ctx = expl.get("context")
        candidates = [] if ctx and ctx["prev_topic"] == intent else self._clarify_candidates(intent, probs)
        if candidates:  # (a follow-up read in the light of the agent's last turn is not asked about)
            expl["clarify"] = candidates
        return intent, conf, probs

    def _clarify_candidates(self, intent: str, probs: dict[str, float]) -> list[str]:
        """The two likeliest tasks when the top reading is not sure enough to act on, else []."""
        tasks = sorted(((p, i) for i, p in probs.items() if i in TASK_INTENTS), reverse=True)
        if len(tasks) < 2 or tasks[1][0] < CLARIFY_SECOND:
            return []
        if intent in TASK_INTENTS and probs[intent] < CLARIFY_BELOW:
            return [tasks[0][1], tasks[1][1]]
        if intent == "other" and tasks[0][0] >= CLARIFY_OTHER_TOP:
            return [tasks[0][1], tasks[1][1]]
        return []

    def _social(self, compact: str) -> tuple[str, list[str]] | None:
        """If the utterance is only social words (+ particles): the highest-priority class and the words."""
        i, seen, classes = 0, [], set()
        while i < len(compact):
            for w, cls in self._social_words:
                if compact.startswith(w, i):
                    if cls:
                        seen.append(w)
                        classes.add(cls)
                    i += len(w)
                    break
            else:
                return None
        for cls in self._social_priority:
            if cls in classes:
                return cls, seen
        return None

    def _leading_social(self, compact: str) -> str | None:
        for w, cls in self._social_words:
            if cls and compact.startswith(w):
                return cls
        return None

    def _refuses(self, compact: str) -> bool:
        """The reply opens by turning an offer down (lexicon ``refusals``: 不用了, 暂时不需要 ...)."""
        return any(compact.startswith(w) for w in self._refusals)

    def _prev_tasks(self, prev: str, k: int = 2) -> list[str]:
        """The ``k`` likeliest tasks of the agent's previous turn."""
        probs = self.classifier.predict(self.pack.strip_boilerplate(self.pack.normalize(prev))).probs
        return sorted((i for i in probs if i in TASK_INTENTS), key=lambda i: -probs[i])[:k]

    def _ends_with_refusal(self, compact: str) -> bool:
        """A reply that ends with a no word ("是我自己的问题 不用了"): its last word decides, not a leading 是."""
        for w, cls in self._social_words:
            if cls and compact.endswith(w) and len(compact) > len(w):
                return cls == "deny" and not compact[:-len(w)].endswith(self._negators)
        return False

    def _only_information(self, compact: str) -> bool:
        """True when the utterance names no task (it just gives digits / a rating / a date)."""
        hits = self.classifier.featurizer.concept_hits(compact)
        return not (self._topical & set(hits))

    def _is_yesno_question(self, agent_text: str) -> bool:
        t = self.pack.normalize(agent_text).replace(" ", "")
        return any(t.endswith(e) for e in self._yesno_endings)


def get_nlu(language: str = "zh-CN") -> Nlu:
    """The shared NLU for ``language`` (trained once; training also loads the tokenizer dictionary)."""
    return _shared_nlu(get_pack(language).code)


@cache
def _shared_nlu(code: str) -> Nlu:
    nlu = Nlu(code)
    nlu.pack.warm_up()  # the tokenizer dictionary (~1 s) loads now, not on the first caller
    return nlu


def clarify_of(r: NluResult) -> list[str]:
    """The two candidate intents when the NLU is not sure enough to act (the bot asks which), else []."""
    return list(r.explanation.get("clarify") or [])


def second_need_of(r: NluResult) -> str | None:
    """A second task named in the same utterance ("查一下物流 顺便开个发票" -> invoice), offered after the first."""
    return r.explanation.get("second_intent") or None


def result_json(r: NluResult) -> dict[str, Any]:
    """The `ivr nlu classify` line: {"text", "intent", "confidence", "slots", "clarify", "second_intent"}."""
    return {"text": r.text, "intent": r.intent, "confidence": r.confidence, "slots": r.slots,
            "clarify": clarify_of(r), "second_intent": second_need_of(r)}
