"""`ivr bench replay`: the shipped fixture suite at 1, 2, 4, 8, 12 and 16 concurrent calls (direct, reference
transcripts, real time); writes the concurrency table into docs/benchmarks.md. Same as
``ivr replay audio_fixtures --concurrency 1,2,4,8,12,16 --bench``."""

from __future__ import annotations

import argparse

DEFAULT_LEVELS = "1,2,4,8,12,16"


def register(bsub: argparse._SubParsersAction) -> None:
    from ivr.cli.replay_cmd import DEFAULT_SUITE, add_run_options

    p = bsub.add_parser("replay", help="fixture replay latency at 1..16 concurrent calls (docs/benchmarks.md)")
    p.add_argument("target", nargs="?", default=DEFAULT_SUITE, metavar="FIXTURE_OR_DIR",
                   help=f"fixtures to play (default {DEFAULT_SUITE}/)")
    add_run_options(p)
    p.set_defaults(func=run, concurrency=None)


def run(args: argparse.Namespace) -> int:
    from ivr.cli.replay_cmd import _levels
    from ivr.cli.replay_cmd import run as replay_run

    if args.concurrency is None:
        args.concurrency = _levels(DEFAULT_LEVELS)
    args.bench = True
    return replay_run(args)
