"""`ivr bench tts`: command line of the speech synthesis benchmark (the measuring is ivr.bench.tts)."""

from __future__ import annotations

import argparse
import asyncio


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tts", help="speech synthesis speed, latency, cache and concurrency")
    p.add_argument("-n", "--count", type=int, default=300, help="sequential syntheses (default 300)")
    p.add_argument("--concurrency", type=int, default=4, help="asyncio tasks synthesising at once (default 4)")
    p.add_argument("--rate", type=int, default=8000, help="output rate in Hz (default 8000, telephone)")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ivr.bench.report import markdown_table, write_section
    from ivr.bench.tts import measure
    from ivr.config import load_settings
    from ivr.errors import UserError
    from ivr.tts import TtsError, check_rate

    try:
        check_rate(args.rate)
    except TtsError as e:
        raise UserError(str(e)) from None
    if args.count < 10 or args.concurrency < 1:
        raise UserError("--count must be >= 10 and --concurrency >= 1")
    try:
        rows, notes = asyncio.run(measure(load_settings(), args.count, args.concurrency, args.rate))
    except TtsError as e:
        raise UserError(str(e)) from None
    table = markdown_table(["measure", "p50", "p90", "p99", "max", "n"], rows)
    body = table + "\n\n" + "\n".join(f"- {n}" for n in notes)
    print(body)
    if not args.no_write:
        print(f"\nwrote {write_section('tts', 'Speech synthesis (ivr bench tts)', body)}")
    return 0
