"""Intent classifier: logistic regression over jieba words, character bigrams and lexicon concepts.

Trained at start-up (well under a second) from the language pack's ``nlu/train.yaml``; every prediction can
list the features that pushed it, so `ivr nlu explain` can show why.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import numpy as np
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from ivr.dialog.nlu.expand import expand
from ivr.lang import LanguagePack

log = logging.getLogger(__name__)

# Intents whose training phrases get polite prefixes/suffixes added (tasks, not small talk).
SOCIAL_INTENTS = frozenset({"greeting", "thanks", "goodbye", "affirm", "deny", "other"})


class TrainingDataError(ValueError):
    """The training file is missing or malformed."""


class Featurizer:
    """Text -> feature strings: ``w:`` words, ``b:`` character bigrams, ``@`` concepts from the lexicon."""

    def __init__(self, pack: LanguagePack):
        self.pack = pack
        concepts = pack.lexicon.get("concepts", {}) or {}
        self.concepts = {name: sorted({str(w) for w in words}, key=len, reverse=True) for name, words in concepts.items()}

    def concept_hits(self, compact: str) -> dict[str, str]:
        """concept -> first (longest) lexicon word found in the space-free text."""
        hits = {}
        for name, words in self.concepts.items():
            for w in words:
                if w in compact:
                    hits[name] = w
                    break
        return hits

    def features(self, text: str) -> tuple[list[str], list[str], dict[str, str]]:
        """(features, tokens, concept hits) of normalised text."""
        compact = text.replace(" ", "")
        tokens = self.pack.tokenize(text)
        hits = self.concept_hits(compact)
        feats = [f"w:{t}" for t in tokens]
        feats += [f"b:{compact[i:i + 2]}" for i in range(len(compact) - 1)]
        feats += [f"@{c}" for c in hits]
        if len(compact) <= 4:
            feats.append("#short")
        return feats, tokens, hits


@dataclass(frozen=True, slots=True)
class Prediction:
    probs: dict[str, float]
    features: list[str]
    tokens: list[str]
    concepts: dict[str, str]

    @property
    def intent(self) -> str:
        return max(self.probs, key=self.probs.__getitem__)

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        return sorted(self.probs.items(), key=lambda kv: -kv[1])[:k]


def _identity(x: list[str]) -> list[str]:
    return x


def load_training(pack: LanguagePack, seed: int = 0) -> tuple[list[str], list[str]]:
    """(texts, labels) from the pack's train.yaml, patterns expanded, light augmentation applied."""
    path = pack.train_path
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise TrainingDataError(f"cannot read NLU training data {path}: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("intents"), dict):
        raise TrainingDataError(f"{path}: expected a mapping with 'intents: {{intent: [patterns]}}'")
    limit = int(data.get("max_per_pattern", 8))
    aug = data.get("augment") or pack.lexicon.get("augment") or {}
    prefixes = [str(p) for p in aug.get("prefixes", [])]
    suffixes = [str(s) for s in aug.get("suffixes", [])]
    rng = random.Random(seed)
    texts: list[str] = []
    labels: list[str] = []
    for intent, patterns in data["intents"].items():
        for pattern in patterns or []:
            for variant in expand(str(pattern), limit=limit, seed=seed):
                norm = pack.mask_numbers(pack.normalize(variant))
                texts.append(norm)
                labels.append(intent)
                if intent not in SOCIAL_INTENTS and (prefixes or suffixes) and rng.random() < 0.35:
                    pre = rng.choice(prefixes) if prefixes and rng.random() < 0.7 else ""
                    suf = rng.choice(suffixes) if suffixes and rng.random() < 0.5 else ""
                    texts.append(pack.mask_numbers(pack.normalize(f"{pre} {variant} {suf}")))
                    labels.append(intent)
    if len(set(labels)) < 2:
        raise TrainingDataError(f"{path}: need phrases for at least two intents")
    return texts, labels


class IntentClassifier:
    """Multinomial logistic regression over TF-IDF weighted features."""

    def __init__(self, featurizer: Featurizer, c: float = 8.0):
        self.featurizer = featurizer
        self.vectorizer = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, min_df=1)
        self.model = LogisticRegression(C=c, solver="newton-cg", max_iter=300, class_weight="balanced")
        self.intents: list[str] = []
        self.n_train = 0

    def fit(self, texts: list[str], labels: list[str]) -> IntentClassifier:
        feats = [self.featurizer.features(t)[0] for t in texts]
        x = self.vectorizer.fit_transform(feats)
        self.model.fit(x, labels)
        self.intents = [str(c) for c in self.model.classes_]
        self._vocab_inv = {i: f for f, i in self.vectorizer.vocabulary_.items()}
        self.n_train = len(texts)
        return self

    def predict(self, text: str) -> Prediction:
        feats, tokens, hits = self.featurizer.features(text)
        x = self.vectorizer.transform([feats])
        p = self.model.predict_proba(x)[0]
        return Prediction({i: float(v) for i, v in zip(self.intents, p, strict=True)}, feats, tokens, hits)

    def contributions(self, features: list[str], intent: str, k: int = 8) -> list[tuple[str, float]]:
        """The features that pushed ``intent`` most (weight x tf-idf value), strongest first."""
        if intent not in self.intents:
            return []
        x = self.vectorizer.transform([features]).tocoo()
        row = self.model.coef_[self.intents.index(intent)]
        contrib = [(self._vocab_inv[j], float(v * row[j])) for j, v in zip(x.col, x.data, strict=True)]
        contrib.sort(key=lambda kv: -abs(kv[1]))
        return [(f, round(w, 3)) for f, w in contrib[:k]]

    def unknown_features(self, features: list[str]) -> list[str]:
        vocab = self.vectorizer.vocabulary_
        return [f for f in features if f not in vocab]


def train(pack: LanguagePack, seed: int = 0) -> IntentClassifier:
    """Train the classifier from the pack's data."""
    texts, labels = load_training(pack, seed)
    clf = IntentClassifier(Featurizer(pack)).fit(texts, labels)
    log.info("NLU classifier trained on %d phrases, %d intents", len(texts), len(clf.intents))
    return clf


def softmax_mix(a: dict[str, float], b: dict[str, float], weight_b: float) -> dict[str, float]:
    """(1-w)*a + w*b over a's keys, renormalised."""
    keys = list(a)
    v = np.array([(1 - weight_b) * a[k] + weight_b * b.get(k, 0.0) for k in keys])
    v = v / v.sum() if v.sum() > 0 else v
    return {k: float(x) for k, x in zip(keys, v, strict=True)}
