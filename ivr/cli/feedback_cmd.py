"""`ivr feedback export`: unrecognised caller utterances, grouped, as labelled-training candidates.

One candidate per group of similar utterances (see :mod:`ivr.services.records.feedback`):
``{"text", "suggested_intent", "count", "variants", "example_call_ids", "states", "prompts", ...}`` per JSON line,
or CSV columns ``text, suggested_intent, count, variants, example_call_ids, states, label`` (``label`` left empty
for the operator to fill in).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from ivr.cli import UserError
from ivr.cli.records_cmd import _filters, _url, _window_args

CSV_COLUMNS = ("text", "suggested_intent", "count", "variants", "example_call_ids", "states", "label")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("feedback", help="the feedback loop: export unrecognised utterances as training candidates")
    fsub = p.add_subparsers(dest="feedback_command", metavar="ACTION", required=True)
    sp = fsub.add_parser("export", help="grouped unrecognised utterances (JSON Lines or CSV)")
    sp.add_argument("--db", metavar="URL", help="SQLAlchemy URL (default: settings db_url / data_dir/ivr.db)")
    sp.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    sp.add_argument("-o", "--output", metavar="FILE", help="write here (default: standard output)")
    sp.add_argument("--threshold", type=float, default=None, help="NLU confidence below this is unrecognised (0.45)")
    sp.add_argument("--min-count", type=int, default=1, help="only groups said at least this often")
    _window_args(sp, "30d")
    sp.set_defaults(func=_export)


def render(groups: list, fmt: str) -> str:
    if fmt == "jsonl":
        return "".join(json.dumps(g.as_dict(), ensure_ascii=False) + "\n" for g in groups)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for g in groups:
        d = g.as_dict()
        w.writerow([d["text"], d["suggested_intent"], d["count"], " | ".join(v["text"] for v in d["variants"]),
                    " ".join(d["example_call_ids"]), " ".join(d["states"]), ""])
    return buf.getvalue()


def _export(args: argparse.Namespace) -> int:
    from ivr.services.records.feedback import DEFAULT_THRESHOLD, collect, group

    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    if not 0.0 <= threshold <= 1.0:
        raise UserError("--threshold must be between 0 and 1")
    groups = [g for g in group(collect(_url(args), _filters(args), threshold)) if g.count >= args.min_count]
    text = render(groups, args.format)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as e:
            raise UserError(f"cannot write {args.output}: {e.strerror}") from None
        print(f"wrote {len(groups)} candidate groups to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
