"""`ivr replay FIXTURE_OR_DIR`: play recorded/generated caller fixtures through the real pipeline and check them.

Exit codes: 0 every call passed; 1 at least one call failed; 2 bad fixtures or options (nothing was played);
3 nothing failed but some calls could not run (e.g. --asr real without the language's model).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from ivr.cli import UserError

DEFAULT_SUITE = "audio_fixtures"


def _levels(text: str) -> list[int]:
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or a list like 1,2,4,8, got {text!r}") from None
    if not levels or any(n < 1 or n > 256 for n in levels):
        raise argparse.ArgumentTypeError("concurrency must be between 1 and 256")
    return levels


def _speed(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.25 <= v <= 10:
        raise argparse.ArgumentTypeError("speed must be between 0.25 and 10")
    return v


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--via", choices=["direct", "webrtc", "sip"], default="direct",
                   help="direct: in-process call session (default); webrtc/sip: as a client of a running `ivr serve`")
    p.add_argument("--asr", choices=["reference", "real"], default="reference",
                   help="reference: each turn's reference transcript replaces ASR output (VAD, timing, dialogue and "
                        "TTS stay real); real: the language's Vosk model recognises the audio")
    p.add_argument("--concurrency", type=_levels, default=[1], metavar="N[,N...]",
                   help="calls at once; a list (1,2,4,8) runs the suite at each level and reports percentiles per level")
    p.add_argument("--speed", type=_speed, default=1.0,
                   help="direct only: play calls this many times faster than real time (CI); latencies then "
                        "include processing stretched by the same factor, so measure at 1 (default)")
    p.add_argument("--server", default="", help="base URL of `ivr serve` for --via webrtc/sip (default "
                                                 "http://HOST:PORT from the settings; SIP calls' records are read there)")
    p.add_argument("--sip", default="", metavar="URI",
                   help="--via sip: dial this (sip:ivr@HOST:PORT or HOST:PORT; default: the --server host and the "
                        "SIP port its /health reports)")
    p.add_argument("--sip-codec", choices=["PCMA", "PCMU"], default="PCMA",
                   help="--via sip: the G.711 law offered first (default PCMA, A-law as on Chinese networks)")
    p.add_argument("--seed", type=int, default=7, help="demo shop seed for direct calls (default 7)")
    p.add_argument("--only", default="", metavar="GLOB[,GLOB]",
                   help="play only fixtures whose name matches one of these patterns (e.g. 'return_*,promotions')")
    p.add_argument("--calls", type=int, default=0, metavar="M",
                   help="calls per concurrency level (default: the suite size, or N when N is larger); the suite "
                        "is cycled to fill them")
    p.add_argument("--report", type=Path, help="write the HTML report here (and the JSON next to it)")
    p.add_argument("--json", action="store_true",
                   help="print the JSON report on standard output (the summary then goes to standard error)")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="write the JSON report to this file")
    p.add_argument("--bench", action="store_true", help="write the concurrency table into docs/benchmarks.md")
    p.add_argument("--validate", action="store_true", help="only check the fixtures (keys, audio, transcripts); no calls")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="play caller fixtures through the pipeline, check expectations, report",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", metavar="FIXTURE_OR_DIR", help="a fixture YAML file or a folder of them")
    add_run_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ivr.config import get_settings
    from ivr.replay.clock import loop_factory
    from ivr.replay.loader import FixtureError, load_suite
    from ivr.replay.report import levels_markdown, print_summary, write_html, write_json
    from ivr.replay.runner import RunOptions, run_suite
    from ivr.replay.schema import ReplayUnavailable

    console = Console(stderr=bool(args.json))
    if args.speed != 1 and args.via != "direct":
        raise UserError("--speed works only with --via direct (a server keeps its own real-time clock)")
    try:
        fixtures = load_suite(args.target)
    except FixtureError as e:
        for line in e.problems:
            print(f"ivr replay: {line}", file=sys.stderr)
        raise UserError(f"{len(e.problems)} problem(s) in the fixtures; nothing was played") from None
    if getattr(args, "validate", False):
        clips = sum(len(lf.clips) for lf in fixtures)
        print(f"{len(fixtures)} fixture(s) valid ({clips} audio clips, "
              f"{sum(len(lf.fixture.turns) for lf in fixtures)} turns)")
        return 0
    if args.only:
        import fnmatch

        pats = [x.strip() for x in args.only.split(",") if x.strip()]
        fixtures = [lf for lf in fixtures if any(fnmatch.fnmatch(lf.name, pat) for pat in pats)]
        if not fixtures:
            raise UserError(f"--only {args.only!r} matches no fixture in {args.target}")
    if args.calls < 0:
        raise UserError("--calls must be positive")
    settings = get_settings()
    server = args.server or f"http://{settings.host}:{settings.port}"
    opts = RunOptions(via=args.via, asr=args.asr, levels=args.concurrency, server=server, seed=args.seed,
                      speed=args.speed, calls=args.calls, sip=getattr(args, "sip", ""),
                      sip_codecs=sorted(["PCMA", "PCMU"], key=lambda c: c != getattr(args, "sip_codec", "PCMA")))
    total = sum(max(args.calls or len(fixtures), n) for n in args.concurrency)
    progress = None
    task = None
    if not args.no_progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(TextColumn("[bold]replay[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("{task.description}"), console=console, transient=True)
        task = progress.add_task("dialling…", total=total)

    def done(res) -> None:
        mark = "✓" if res.passed else "✗"
        if progress is not None and task is not None:
            progress.update(task, advance=1, description=f"{mark} {res.fixture}")

    async def main():
        return await run_suite(fixtures, settings, opts, target=str(args.target), on_done=done)

    try:
        if progress is not None:
            progress.start()
        with asyncio.Runner(loop_factory=loop_factory(args.speed)) as runner:
            suite = runner.run(main())
    except ReplayUnavailable as e:
        raise UserError(str(e)) from None
    finally:
        if progress is not None:
            progress.stop()
    print_summary(suite, console)
    json_path = args.output or (args.report.with_suffix(".json") if args.report else None)
    if json_path is not None:
        console.print(f"JSON report: {write_json(suite, json_path)}")
    if args.json:
        import json

        print(json.dumps(suite.as_dict(), ensure_ascii=False, default=str))
    if args.report is not None:
        console.print(f"HTML report: {write_html(suite, args.report)}")
    if args.bench:
        from ivr.bench.report import write_section

        flags = (f" --only {args.only}" if args.only else "") + (f" --calls {args.calls}" if args.calls else "")
        flags += f" --speed {args.speed:g}" if args.speed != 1 else ""
        body = (f"`ivr replay {args.target} --via {args.via} --asr {args.asr} --concurrency "
                f"{','.join(map(str, args.concurrency))}{flags}`: {len(fixtures)} fixture(s) played as callers, N "
                "calls at a time (the fixtures are cycled to fill each level). heard = caller's speech end or key press to first bot audio heard (includes the "
                "VAD's trailing silence); pipeline = the session's trace, VAD speech end to first audio sent.\n\n"
                + levels_markdown(suite))
        console.print(f"benchmarks: {write_section('replay', 'Fixture replay under concurrency', body)}")
    failed = [c for c in suite.calls if not c.passed and not c.error.startswith("not run")]
    not_run = [c for c in suite.calls if c.error.startswith("not run")]
    if failed:
        return 1
    return 3 if not_run else 0
