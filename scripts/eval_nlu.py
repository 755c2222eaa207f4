#!/usr/bin/env python3
"""Evaluate the NLU on the JDDC dev set (../shared/data/jddc_dev.tsv) and write the results into docs/nlu.md.

The dev set is research-only: this script reads it to measure and writes only counts and rates, never texts.
Usage: .venv/bin/python scripts/eval_nlu.py [--dev PATH] [--doc docs/nlu.md] [--no-write] [--repeat N]
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.bench.report import machine_description, markdown_table, percentiles  # noqa: E402

DEFAULT_DEV = ROOT.parent / "shared" / "data" / "jddc_dev.tsv"
MARK = "eval:dev"


@dataclass
class Evaluation:
    total: int = 0
    correct: int = 0
    gold: list[str] = field(default_factory=list)
    pred: list[str] = field(default_factory=list)
    ambiguous_total: int = 0
    ambiguous_hit: int = 0  # predicted the label or the second label
    latencies_ms: list[float] = field(default_factory=list)
    no_context_correct: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else float("nan")


def read_dev(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    need = {"customer_text", "prev_agent_text", "intent", "clarity"}
    if not rows or not need <= set(rows[0]):
        raise SystemExit(f"{path}: expected a TSV with columns {sorted(need)}")
    return rows


def evaluate(rows: list[dict[str, str]], repeat: int = 3) -> Evaluation:
    from ivr.dialog.nlu import get_nlu

    nlu = get_nlu("zh-CN")
    ev = Evaluation()
    for row in rows:
        text, prev = row["customer_text"], row.get("prev_agent_text") or None
        r = nlu.parse(text, prev_agent_text=prev)
        if row["clarity"] == "clear":
            ev.total += 1
            ev.gold.append(row["intent"])
            ev.pred.append(r.intent)
            ev.correct += r.intent == row["intent"]
            ev.no_context_correct += nlu.parse(text).intent == row["intent"]
        else:
            ev.ambiguous_total += 1
            ev.ambiguous_hit += r.intent in {row["intent"], row.get("second_intent") or row["intent"]}
    for _ in range(repeat):
        for row in rows:
            t0 = time.perf_counter()
            nlu.parse(row["customer_text"], prev_agent_text=row.get("prev_agent_text") or None)
            ev.latencies_ms.append((time.perf_counter() - t0) * 1000)
    return ev


def per_intent_table(ev: Evaluation) -> str:
    intents = sorted(set(ev.gold) | set(ev.pred))
    rows = []
    for i in intents:
        support = sum(g == i for g in ev.gold)
        tp = sum(g == p == i for g, p in zip(ev.gold, ev.pred, strict=True))
        predicted = sum(p == i for p in ev.pred)
        confused = Counter(p for g, p in zip(ev.gold, ev.pred, strict=True) if g == i and p != i)
        rows.append([
            i, support, tp,
            f"{tp / support:.0%}" if support else "-",
            f"{tp / predicted:.0%}" if predicted else "-",
            ", ".join(f"{k} {v}" for k, v in confused.most_common()) or "-",
        ])
    return markdown_table(["gold intent", "rows", "correct", "recall", "precision", "predicted instead"], rows)


def confusion_matrix(ev: Evaluation) -> str:
    intents = sorted(set(ev.gold) | set(ev.pred))
    short = {i: i.split("_")[0][:8] for i in intents}
    rows = []
    for g in intents:
        if not any(x == g for x in ev.gold):
            continue
        counts = Counter(p for x, p in zip(ev.gold, ev.pred, strict=True) if x == g)
        rows.append([g] + [counts.get(p, "") or "." for p in intents])
    return markdown_table(["gold \\ predicted"] + [short[p] for p in intents], rows)


def report(ev: Evaluation, dev: Path) -> str:
    lat = percentiles(ev.latencies_ms)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    target = "meets" if ev.accuracy >= 0.90 else "misses"
    return f"""## Accuracy on the JDDC dev set

_Measured {stamp} by `scripts/eval_nlu.py` on {machine_description()}; dev file `{dev.name}`
({ev.total} clear rows, {ev.ambiguous_total} ambiguous). Only counts are recorded here: the dev texts are
research-only and never enter the repository._

- **Intent accuracy on clear rows: {ev.correct}/{ev.total} = {ev.accuracy:.1%}** ({target} the 90 % target),
  with the previous agent turn as context (`prev_agent_text`).
- Without the previous agent turn: {ev.no_context_correct}/{ev.total} = {ev.no_context_correct / max(ev.total, 1):.1%}.
- Ambiguous rows, prediction equal to the label or the second label: {ev.ambiguous_hit}/{ev.ambiguous_total}.
- Latency of one classification (`Nlu.parse`, with context, {lat['n']} calls): p50 {lat['p50']:.2f} ms,
  p90 {lat['p90']:.2f} ms, **p99 {lat['p99']:.2f} ms**, max {lat['max']:.2f} ms (target p99 < 5 ms).

### Per intent (clear rows)

{per_intent_table(ev)}

### Confusion matrix (clear rows; columns abbreviated to the intent's first word)

{confusion_matrix(ev)}
"""


def write_doc(doc: Path, body: str) -> None:
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# NLU\n"
    section = f"<!-- {MARK} -->\n{body.strip()}\n<!-- /{MARK} -->"
    pat = re.compile(rf"<!-- {re.escape(MARK)} -->.*?<!-- /{re.escape(MARK)} -->", re.S)
    text = pat.sub(lambda _m: section, text) if pat.search(text) else text.rstrip() + "\n\n" + section + "\n"
    doc.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dev", type=Path, default=DEFAULT_DEV)
    ap.add_argument("--doc", type=Path, default=ROOT / "docs" / "nlu.md")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--repeat", type=int, default=3, help="latency passes over the dev rows")
    args = ap.parse_args(argv)
    if not args.dev.is_file():
        print(f"eval_nlu: dev set not found: {args.dev} (it lives in ../shared)", file=sys.stderr)
        return 2
    ev = evaluate(read_dev(args.dev), repeat=max(1, args.repeat))
    body = report(ev, args.dev)
    print(body)
    if not args.no_write:
        write_doc(args.doc, body)
        print(f"written: {args.doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
