"""`ivr bench asr|tts|calls|...`: benchmarks that print percentiles and write docs/benchmarks.md."""

from __future__ import annotations

import argparse
import importlib

from ivr.bench import MODULES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure speed and memory; writes docs/benchmarks.md")
    bsub = p.add_subparsers(dest="bench", metavar="WHAT", required=True)
    for name in MODULES:
        try:
            mod = importlib.import_module(f"ivr.bench.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"ivr.bench.{name}":
                continue
            raise
        mod.register(bsub)
