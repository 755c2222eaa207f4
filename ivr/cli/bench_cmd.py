"""`ivr bench asr|tts|calls|replay|sip`: benchmarks that print percentiles and write docs/benchmarks.md.

The measuring code lives in ``ivr.bench`` (one module per benchmark); each command's ``register(subparsers)``
and ``run(args)`` live in ``ivr.cli.bench_<name>``. ``ivr bench replay`` is pure command glue over ``ivr replay``
and lives here. The CLI imports the benchmarks, never the other way round.
"""

from __future__ import annotations

import argparse
import importlib

REPLAY_LEVELS = "1,2,4,8,12,16"
# `ivr bench <name>` -> the module with its register(subparsers), in help order
COMMANDS = {"asr": "ivr.cli.bench_asr", "tts": "ivr.cli.bench_tts", "calls": "ivr.cli.bench_calls",
            "sip": "ivr.cli.bench_sip", "fuzz": "ivr.cli.bench_fuzz"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure speed and memory; writes docs/benchmarks.md")
    bsub = p.add_subparsers(dest="bench", metavar="WHAT", required=True)
    for module in COMMANDS.values():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name == module:
                continue
            raise
        mod.register(bsub)
    _register_replay(bsub)


def _register_replay(bsub: argparse._SubParsersAction) -> None:
    """`ivr bench replay`: the shipped fixture suite at 1, 2, 4, 8, 12 and 16 concurrent calls (direct, reference
    transcripts, real time); writes the concurrency table into docs/benchmarks.md. Same as
    ``ivr replay audio_fixtures --concurrency 1,2,4,8,12,16 --bench``."""
    from ivr.cli.replay_cmd import DEFAULT_SUITE, add_run_options

    p = bsub.add_parser("replay", help="fixture replay latency at 1..16 concurrent calls (docs/benchmarks.md)")
    p.add_argument("target", nargs="?", default=DEFAULT_SUITE, metavar="FIXTURE_OR_DIR",
                   help=f"fixtures to play (default {DEFAULT_SUITE}/)")
    add_run_options(p)
    p.set_defaults(func=_run_replay, concurrency=None)


def _run_replay(args: argparse.Namespace) -> int:
    from ivr.cli.replay_cmd import _levels
    from ivr.cli.replay_cmd import run as replay_run

    if args.concurrency is None:
        args.concurrency = _levels(REPLAY_LEVELS)
    args.bench = True
    return replay_run(args)
