"""`ivr nlu classify | explain | eval`: the NLU on the command line.

classify: UTF-8 lines on stdin (plain text, or JSON objects with "text" and optional "prev_agent_text" /
"expected"), one JSON line out per line in: {"text", "intent", "confidence", "slots", "clarify", "second_intent"}
(``clarify``: the two candidate intents when the bot would ask which one is meant, else []).
explain: how one utterance was understood (normalisation, tokens, rules, scores, slots).
eval: accuracy per intent, confusion pairs, clarification and wrong-action rates on a labelled TSV.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ivr.cli import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("nlu", help="intent and slot understanding (classify stdin lines, explain one text)")
    nsub = p.add_subparsers(dest="nlu", metavar="ACTION", required=True)

    c = nsub.add_parser("classify", help="one JSON line per stdin line: text, intent, confidence, slots")
    c.add_argument("--language", default=None, help="language pack (default: the configured language)")
    c.add_argument("--expected", default=None, help="hint for every line: yesno, digits, order_id, phone_tail, rating ...")
    c.set_defaults(func=_classify)

    e = nsub.add_parser("explain", help="show how TEXT is understood")
    e.add_argument("text", nargs="+", help="caller utterance (words may be given as separate arguments)")
    e.add_argument("--prev", dest="prev_agent_text", default=None, help="what the agent said just before")
    e.add_argument("--expected", default=None, help="hint: yesno, digits, order_id, phone_tail, rating ...")
    e.add_argument("--language", default=None)
    e.add_argument("--json", action="store_true", help="print the full result as JSON")
    e.set_defaults(func=_explain)

    v = nsub.add_parser("eval", help="accuracy, confusions, clarification and wrong-action rates on a labelled TSV")
    v.add_argument("file", help="TSV with a 'text' (or 'customer_text') and an 'intent' column; "
                   "'prev_agent_text' is used as context, a 'clarity' column keeps clear rows, others are ignored")
    v.add_argument("--language", default=None)
    v.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    v.set_defaults(func=_eval)


def _language(language: str | None) -> str:
    """The language pack's code for ``language`` (default: the configured language); a UserError when there is no
    such pack. Cheap next to :func:`_nlu` (no classifier, no tokenizer dictionary)."""
    from ivr.lang import UnknownLanguageError, get_pack

    if language is None:
        from ivr.config import get_settings

        language = get_settings().language
    try:
        return get_pack(language).code
    except UnknownLanguageError as e:
        raise UserError(str(e)) from None


def _nlu(language: str | None):
    from ivr.dialog.nlu import get_nlu  # imported lazily: sklearn/jieba are slow

    return get_nlu(_language(language))


def _check_expected(expected: Any, where: str) -> str | None:
    from ivr.dialog.nlu import EXPECTATIONS

    if expected is None:
        return None
    if not isinstance(expected, str) or expected not in EXPECTATIONS:
        raise UserError(f"{where}: expected must be one of {', '.join(EXPECTATIONS)} (got {expected!r})")
    return expected


def _parse_line(raw: bytes, n: int) -> tuple[str, str | None, str | None]:
    try:
        line = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise UserError(f"line {n}: not UTF-8 text") from None
    line = line.lstrip("\ufeff") if n == 1 else line
    if not line.lstrip().startswith("{"):
        return line, None, None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise UserError(f"line {n}: invalid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        raise UserError(f'line {n}: a JSON line needs a string "text" field')
    prev = obj.get("prev_agent_text")
    if prev is not None and not isinstance(prev, str):
        raise UserError(f'line {n}: "prev_agent_text" must be a string')
    return obj["text"], prev, _check_expected(obj.get("expected"), f"line {n}")


def _classify(args: argparse.Namespace) -> int:
    from ivr.dialog.nlu import result_json

    default_expected = _check_expected(args.expected, "--expected")
    language = _language(args.language)  # an unknown language fails first, as before any line is read
    nlu = None  # trained when the first line is good: a bad first line fails in a fraction of the time
    out = sys.stdout
    for n, raw in enumerate(sys.stdin.buffer, start=1):
        text, prev, expected = _parse_line(raw, n)
        if nlu is None:
            nlu = _nlu(language)
        r = nlu.parse(text, prev_agent_text=prev, expected=expected or default_expected)
        out.write(json.dumps(result_json(r), ensure_ascii=False) + "\n")
        out.flush()
    return 0


def _explain(args: argparse.Namespace) -> int:
    text = " ".join(args.text)
    nlu = _nlu(args.language)
    r = nlu.parse(text, prev_agent_text=args.prev_agent_text, expected=_check_expected(args.expected, "--expected"))
    if args.json:
        print(json.dumps({"text": r.text, "intent": r.intent, "confidence": r.confidence, "slots": r.slots,
                          "explanation": r.explanation}, ensure_ascii=False, indent=2))
        return 0
    x = r.explanation
    lines = [
        f"text:        {r.text}",
        f"normalized:  {x.get('normalized', '')}",
    ]
    if x.get("core") != x.get("normalized"):
        lines.append(f"without boilerplate: {x.get('core', '')}")
    if x.get("correction"):
        lines.append(f"after self-correction: {x['correction']}")
    if x.get("tokens"):
        lines.append(f"tokens:      {' / '.join(x['tokens'])}")
    if x.get("concepts"):
        lines.append("concepts:    " + ", ".join(f"{k}({v})" for k, v in x["concepts"].items()))
    if x.get("expected"):
        lines.append(f"expected:    {x['expected']}")
    lines.append(f"decided by:  {x.get('decided_by')}")
    if x.get("rule"):
        lines.append(f"rule:        {x['rule']}")
    if x.get("social_words"):
        lines.append(f"social words: {', '.join(x['social_words'])}")
    if x.get("context"):
        c = x["context"]
        lines.append(f"context:     previous agent turn is about {c['prev_topic']} (weight {c['weight']})")
    if x.get("scores"):
        lines.append("scores:      " + ", ".join(f"{k} {v:.3f}" for k, v in x["scores"].items()))
    if x.get("top_features"):
        lines.append("why:         " + ", ".join(f"{f} {w:+.3f}" for f, w in x["top_features"]))
    lines.append(f"intent:      {r.intent} ({r.confidence:.3f})")
    lines.append(f"slots:       {json.dumps(r.slots, ensure_ascii=False)}")
    if x.get("slot_rules"):
        lines.append(f"slot rules:  {'; '.join(x['slot_rules'])}")
    print("\n".join(lines))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ivr.dialog.nlu.evaluate import EvalFileError, evaluate, read_rows, render

    path = Path(args.file)
    try:
        rows, skipped = read_rows(path)
    except EvalFileError as e:
        raise UserError(str(e)) from None
    if not rows:
        raise UserError(f"{path}: no labelled rows to evaluate")
    ev = evaluate(_nlu(args.language), rows, skipped)
    if args.json:
        print(json.dumps({"file": str(path), **ev.as_dict()}, ensure_ascii=False))
    else:
        print(render(ev, path.name))
    return 0
