"""Intent classifier: logistic regression over jieba words, character bigrams and lexicon concepts.

Trained at start-up (well under a second) from the language pack's ``nlu/train.yaml``; every prediction can
list the features that pushed it, so `ivr nlu explain` can show why.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ivr.dialog.nlu.expand import expand
from ivr.dialog.nlu.phonetic import SCHEMES, bigram_features, table
from ivr.lang import LanguagePack

log = logging.getLogger(__name__)

# Intents whose training phrases get polite prefixes/suffixes added (tasks, not small talk).
SOCIAL_INTENTS = frozenset({"greeting", "thanks", "goodbye", "affirm", "deny", "other"})


class TrainingDataError(ValueError):
    """The training file is missing or malformed."""


class Featurizer:
    """Text -> feature strings: ``w:`` words, ``b:`` character bigrams, ``p:`` syllable bigrams (packs with
    ``phonetic:``, robust to a recogniser's homophones), ``@`` concepts from the lexicon."""

    def __init__(self, pack: LanguagePack):
        self.pack = pack
        scheme = pack.data.get("phonetic")
        if scheme is not None and scheme not in SCHEMES:
            raise TrainingDataError(f"{pack.dir / 'pack.yaml'}: phonetic must be one of {', '.join(SCHEMES)}")
        self.phonetic: str | None = scheme
        if scheme:
            table(scheme)  # reads the pack's syllable table now, not on the first caller
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
        feats += bigram_features(compact, self.phonetic)
        feats += [f"@{c}" for c in hits]
        if len(compact) <= 4:
            feats.append("#short")
        return feats, tokens, hits


class CharFeaturizer:
    """Text -> character 1-3-grams (``c:``): the second model of the ensemble, blind to segmentation."""

    def __init__(self, n_max: int = 3):
        self.n_max = n_max

    def features(self, text: str) -> tuple[list[str], list[str], dict[str, str]]:
        compact = text.replace(" ", "")
        feats = [f"c:{compact[i:i + n]}" for n in range(1, self.n_max + 1) for i in range(len(compact) - n + 1)]
        return feats, [], {}


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
    # lead-ins of another kind ("转人工", "服务太差了") before a concrete need: the need wins
    lead_ins = [str(p) for p in aug.get("lead_ins", [])]
    lead_rate = float(aug.get("lead_in_rate", 0.12))
    lead_skip = set(aug.get("lead_in_skip", ["human_agent", "complaint"]))
    # a yes/ok that answers the agent before a concrete need ("对 那帮我催一下快递"): the need decides
    reply_leads = [str(p) for p in aug.get("reply_leads", [])]
    reply_rate = float(aug.get("reply_lead_rate", 0.08))
    texts: list[str] = []
    labels: list[str] = []

    def add(text: str, intent: str) -> None:
        texts.append(pack.mask_numbers(pack.normalize(text)))
        labels.append(intent)

    for intent, patterns in data["intents"].items():
        task = intent not in SOCIAL_INTENTS
        for pattern in patterns or []:
            for variant in expand(str(pattern), limit=limit, seed=seed):
                add(variant, intent)
                if not task:
                    continue
                # drawn per phrase, not from one stream: adding a pattern changes only its own rows
                rng = random.Random(f"{seed}|{intent}|{variant}")
                if (prefixes or suffixes) and rng.random() < 0.35:
                    pre = rng.choice(prefixes) if prefixes and rng.random() < 0.7 else ""
                    suf = rng.choice(suffixes) if suffixes and rng.random() < 0.5 else ""
                    add(f"{pre} {variant} {suf}", intent)
                if lead_ins and intent not in lead_skip and rng.random() < lead_rate:
                    add(f"{rng.choice(lead_ins)} {variant}", intent)
                if reply_leads and rng.random() < reply_rate:
                    add(f"{rng.choice(reply_leads)} {variant}", intent)
    if len(set(labels)) < 2:
        raise TrainingDataError(f"{path}: need phrases for at least two intents")
    return texts, labels


class IntentClassifier:
    """Multinomial logistic regression over TF-IDF weighted features.

    scikit-learn fits it; predictions use the fitted arrays directly with numpy (tens of microseconds, and no
    scikit-learn import at all when the model comes from the cache).
    """

    def __init__(self, featurizer: Featurizer | CharFeaturizer, c: float = 8.0, char_weight: float = 0.0):
        self.featurizer = featurizer
        self.c = c
        # ensemble: share of a second model over character n-grams in the probabilities (0 = none)
        self.char_weight = char_weight
        self.char: IntentClassifier | None = None
        self.intents: list[str] = []
        self.vocab: dict[str, int] = {}
        self.idf = np.zeros(0)
        self.weights = np.zeros((0, 0))  # features x intents
        self.bias = np.zeros(0)
        self.n_train = 0
        self._names: list[str] = []  # feature index -> feature (for explanations)

    def fit(self, texts: list[str], labels: list[str]) -> IntentClassifier:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        feats = [self.featurizer.features(t)[0] for t in texts]
        vectorizer = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, min_df=1)
        x = vectorizer.fit_transform(feats)
        model = LogisticRegression(C=self.c, solver="newton-cg", max_iter=300, class_weight="balanced")
        model.fit(x, labels)
        self.intents = [str(c) for c in model.classes_]
        self.vocab = {str(f): int(i) for f, i in vectorizer.vocabulary_.items()}
        self.idf = np.asarray(vectorizer.idf_, dtype=np.float64)
        self.weights = np.ascontiguousarray(model.coef_.T, dtype=np.float64)
        self.bias = np.asarray(model.intercept_, dtype=np.float64)
        self.n_train = len(texts)
        if self.char_weight > 0:
            self.char = IntentClassifier(CharFeaturizer(), c=self.c).fit(texts, labels)
        return self

    def state(self) -> dict:
        return {"intents": self.intents, "vocab": self.vocab, "idf": self.idf, "weights": self.weights,
                "bias": self.bias, "n_train": self.n_train, "char": self.char.state() if self.char else None}

    def load_state(self, st: dict) -> IntentClassifier:
        self.intents, self.vocab, self.n_train = list(st["intents"]), dict(st["vocab"]), int(st["n_train"])
        self.idf, self.weights, self.bias = st["idf"], st["weights"], st["bias"]
        self.char = IntentClassifier(CharFeaturizer()).load_state(st["char"]) if st.get("char") else None
        return self

    def _probs(self, features: list[str]) -> np.ndarray:
        idx, vals = self._vector(features)
        z = vals @ self.weights[idx] + self.bias
        z = np.exp(z - z.max())
        return z / z.sum()

    def _vector(self, features: list[str]) -> tuple[np.ndarray, np.ndarray]:
        counts: dict[int, int] = {}
        for f in features:
            j = self.vocab.get(f)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
        vals = tf * self.idf[idx]
        norm = float(np.sqrt(vals @ vals))
        return idx, (vals / norm if norm > 0 else vals)

    def predict(self, text: str) -> Prediction:
        feats, tokens, hits = self.featurizer.features(text)
        p = self._probs(feats)
        if self.char is not None and self.char_weight > 0:
            p = (1 - self.char_weight) * p + self.char_weight * self.char._probs(self.char.featurizer.features(text)[0])
        return Prediction({i: float(v) for i, v in zip(self.intents, p, strict=True)}, feats, tokens, hits)

    def contributions(self, features: list[str], intent: str, k: int = 8) -> list[tuple[str, float]]:
        """The features that pushed ``intent`` most (weight x tf-idf value), strongest first."""
        if intent not in self.intents:
            return []
        idx, vals = self._vector(features)
        col = self.weights[idx, self.intents.index(intent)] * vals
        if len(self._names) != len(self.vocab):
            names = [""] * len(self.vocab)
            for f, j in self.vocab.items():
                names[j] = f
            self._names = names
        contrib = sorted(((self._names[int(j)], float(w)) for j, w in zip(idx, col, strict=True)), key=lambda kv: -abs(kv[1]))
        return [(f, round(w, 3)) for f, w in contrib[:k]]


CODE_VERSION = "7"  # bump when features or the model change, so cached models are retrained


CHAR_WEIGHT = 0.3  # the character n-gram model's share (round 3: +1 dev row, no own unseen row lost)


def _cache_dir() -> Path:
    base = os.environ.get("IVR_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ivr"
    return Path(base) / "nlu"


def _data_hash(pack: LanguagePack) -> str:
    h = hashlib.sha256(f"{CODE_VERSION}|{pack.code}".encode())
    for path in (pack.train_path, pack.lexicon_path, pack.dir / "pack.yaml", pack.user_dict_path):
        h.update(path.name.encode())
        h.update(path.read_bytes() if path.is_file() else b"-")
    return h.hexdigest()[:20]


def train(pack: LanguagePack, seed: int = 0, use_cache: bool = True) -> IntentClassifier:
    """The classifier for the pack's data: from the cache when the data is unchanged, else trained (~1 s)."""
    clf = IntentClassifier(Featurizer(pack), char_weight=CHAR_WEIGHT)
    path = _cache_dir() / f"{pack.code}-{_data_hash(pack)}.pkl"
    if use_cache and path.is_file():
        try:
            with path.open("rb") as f:
                clf.load_state(pickle.load(f))
            log.info("NLU classifier loaded from %s", path)
            return clf
        except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as e:
            log.warning("NLU model cache %s unreadable (%s); retraining", path, e)
    texts, labels = load_training(pack, seed)
    clf.fit(texts, labels)
    log.info("NLU classifier trained on %d phrases, %d intents", len(texts), len(clf.intents))
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            with tmp.open("wb") as f:
                pickle.dump(clf.state(), f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except OSError as e:
            log.warning("cannot cache the NLU model in %s: %s", path.parent, e)
    return clf


def softmax_mix(a: dict[str, float], b: dict[str, float], weight_b: float) -> dict[str, float]:
    """(1-w)*a + w*b over a's keys, renormalised."""
    keys = list(a)
    v = np.array([(1 - weight_b) * a[k] + weight_b * b.get(k, 0.0) for k in keys])
    v = v / v.sum() if v.sum() > 0 else v
    return {k: float(x) for k, x in zip(keys, v, strict=True)}
