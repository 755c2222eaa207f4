"""Evaluate the NLU on a labelled TSV: accuracy per intent, confusion pairs, clarification and wrong-action rates.

The file needs a text column (``text`` or ``customer_text``) and an ``intent`` column; ``prev_agent_text`` is used
as context when present; a ``clarity`` column keeps only ``clear`` rows (others are counted, not scored); any other
column is ignored. Used by ``ivr nlu eval`` and the tests.

Definitions (one row = one caller utterance):

- *accuracy*: the NLU's top intent equals the label (also when it would ask to clarify).
- *clarification rate*: rows where the NLU would ask a clarifying question instead of acting.
- *wrong-action rate*: rows where the bot would start a task flow (a task intent, confident, no clarifying
  question) for an intent other than the label.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ivr.dialog.host import Parser

TEXT_COLUMNS = ("text", "customer_text")


class EvalFileError(ValueError):
    """The evaluation file cannot be read or lacks the needed columns."""


@dataclass(frozen=True, slots=True)
class Row:
    text: str
    intent: str
    prev: str | None = None


@dataclass
class Evaluation:
    """Scores of one run; ``as_dict`` is the ``--json`` shape."""

    gold: list[str] = field(default_factory=list)
    pred: list[str] = field(default_factory=list)
    clarified: list[bool] = field(default_factory=list)
    wrong_action: list[bool] = field(default_factory=list)
    skipped: int = 0  # rows not scored (clarity other than clear)
    task_intents: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return len(self.gold)

    @property
    def correct(self) -> int:
        return sum(g == p for g, p in zip(self.gold, self.pred, strict=True))

    def _rate(self, flags: list[bool]) -> float:
        return sum(flags) / len(flags) if flags else 0.0

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def subset_accuracy(self, intents: tuple[str, ...] | set[str]) -> tuple[int, int]:
        pairs = [(g, p) for g, p in zip(self.gold, self.pred, strict=True) if g in intents]
        return sum(g == p for g, p in pairs), len(pairs)

    @property
    def clarification_rate(self) -> float:
        return self._rate(self.clarified)

    @property
    def wrong_action_rate(self) -> float:
        return self._rate(self.wrong_action)

    def per_intent(self) -> list[dict[str, Any]]:
        out = []
        for i in sorted(set(self.gold) | set(self.pred)):
            support = sum(g == i for g in self.gold)
            tp = sum(g == p == i for g, p in zip(self.gold, self.pred, strict=True))
            predicted = sum(p == i for p in self.pred)
            out.append({"intent": i, "rows": support, "correct": tp,
                        "recall": tp / support if support else None,
                        "precision": tp / predicted if predicted else None})
        return out

    def confusions(self) -> list[tuple[str, str, int]]:
        """(gold, predicted, count) of the mistakes, most frequent first."""
        c = Counter((g, p) for g, p in zip(self.gold, self.pred, strict=True) if g != p)
        return [(g, p, n) for (g, p), n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))]

    def as_dict(self) -> dict[str, Any]:
        task_ok, task_n = self.subset_accuracy(self.task_intents)
        return {
            "rows": self.total, "skipped": self.skipped, "correct": self.correct, "accuracy": self.accuracy,
            "task_rows": task_n, "task_correct": task_ok, "task_accuracy": task_ok / task_n if task_n else None,
            "clarification_rate": self.clarification_rate, "clarified": sum(self.clarified),
            "wrong_action_rate": self.wrong_action_rate, "wrong_actions": sum(self.wrong_action),
            "per_intent": self.per_intent(),
            "confusions": [{"gold": g, "predicted": p, "count": n} for g, p, n in self.confusions()],
        }


def read_rows(path: Path) -> tuple[list[Row], int]:
    """(scored rows, skipped rows) of a TSV file."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            cols = reader.fieldnames or []
            text_col = next((c for c in TEXT_COLUMNS if c in cols), None)
            if text_col is None or "intent" not in cols:
                raise EvalFileError(f"{path}: needs a 'text' (or 'customer_text') and an 'intent' column "
                                    f"(found: {', '.join(cols) or 'none'})")
            rows, skipped = [], 0
            for rec in reader:
                text, intent = (rec.get(text_col) or "").strip(), (rec.get("intent") or "").strip()
                if not intent:
                    continue
                if "clarity" in cols and (rec.get("clarity") or "clear").strip() != "clear":
                    skipped += 1
                    continue
                rows.append(Row(text, intent, (rec.get("prev_agent_text") or "").strip() or None))
    except OSError as e:
        raise EvalFileError(f"cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise EvalFileError(f"{path}: not UTF-8 text") from None
    return rows, skipped


def evaluate(nlu: Parser, rows: list[Row], skipped: int = 0, min_confidence: float = 0.45) -> Evaluation:
    """Run the NLU over ``rows``. ``min_confidence``: the dialogue acts on a task intent from this confidence."""
    from ivr.dialog.nlu import TASK_INTENTS, clarify_of

    ev = Evaluation(skipped=skipped, task_intents=TASK_INTENTS)
    for row in rows:
        r = nlu.parse(row.text, prev_agent_text=row.prev)
        asks = bool(clarify_of(r))
        ev.gold.append(row.intent)
        ev.pred.append(r.intent)
        ev.clarified.append(asks)
        ev.wrong_action.append(not asks and r.intent in TASK_INTENTS and r.intent != row.intent
                               and r.confidence >= min_confidence)
    return ev


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def render(ev: Evaluation, name: str = "") -> str:
    """The human-readable report of ``ivr nlu eval``."""
    d = ev.as_dict()
    lines = [f"NLU evaluation{f' on {name}' if name else ''}: {ev.total} rows"
             + (f" ({ev.skipped} not clear, not scored)" if ev.skipped else ""),
             f"  all intents:        {ev.correct}/{ev.total} = {_pct(ev.accuracy)}",
             f"  task intents:       {d['task_correct']}/{d['task_rows']} = {_pct(d['task_accuracy'])}",
             f"  clarification rate: {d['clarified']}/{ev.total} = {_pct(ev.clarification_rate)}",
             f"  wrong-action rate:  {d['wrong_actions']}/{ev.total} = {_pct(ev.wrong_action_rate)}",
             "", f"{'intent':<18}{'rows':>6}{'correct':>9}{'recall':>9}{'precision':>11}"]
    for p in d["per_intent"]:
        lines.append(f"{p['intent']:<18}{p['rows']:>6}{p['correct']:>9}{_pct(p['recall']):>9}{_pct(p['precision']):>11}")
    conf = ev.confusions()
    lines += ["", "confusion pairs (gold -> predicted: count):"]
    lines += [f"  {g} -> {p}: {n}" for g, p, n in conf[:20]] or ["  none"]
    return "\n".join(lines)
