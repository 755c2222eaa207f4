"""`ivr bench fuzz`: property-based fuzzing of the service's inputs with Hypothesis; writes docs/benchmarks.md.

Targets (each against one real service started as ``ivr serve`` starts it, on loopback):

* ``sip``: SIP messages over real UDP and TCP sockets to the gateway (new calls and in-dialog requests);
* ``sdp``: SDP bodies straight into the project's offer parser and aiortc's parser (no server);
* ``http``: the JSON APIs (call API, logins, agent desk, statistics) logged out, as agent and as supervisor;
* ``webrtc``: offers to POST /api/calls/webrtc.

Per target it prints cases, crashes (5xx but the deliberate 503, a traceback in the log, the service gone),
hangs (no answer within the case's timeout) and cases/s. The test suite runs the same targets with 2,000 cases
each (tests/test_fuzz_*.py); needs the dev extras (``pip install -e .[dev]``: Hypothesis).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

TARGETS = ("sip", "sdp", "http", "webrtc")
DEFAULT_CASES = 10000
WEBRTC_MAX_CALLS = 300  # answered offers whose caller never connects linger until the session's connect timeout


def register(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser("fuzz", help="fuzz SIP, SDP, the HTTP APIs and WebRTC offers (docs/benchmarks.md)")
    p.add_argument("--cases", type=int, default=DEFAULT_CASES, help=f"cases per target (default {DEFAULT_CASES})")
    p.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated subset of {','.join(TARGETS)}")
    p.add_argument("--seed", type=int, default=12, help="Hypothesis seed (runs are reproducible)")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    p.set_defaults(func=run)


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """Warnings and up only while fuzzing (refused messages are logged at INFO, thousands of them)."""
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.setLevel(old)


def run_target(name: str, cases: int, *, seed: int = 12, progress: Callable[[int], None] | None = None) -> Any:
    """Fuzz one target with ``cases`` generated cases; returns its :class:`~ivr.bench.fuzz_harness.FuzzResult`."""
    from ivr.bench import fuzz_inputs as fi
    from ivr.bench.fuzz_harness import LogWatch, run_cases, serve_app

    if name == "sdp":
        from ivr.bench.fuzz_web import SdpParseTarget

        with quiet_logs():
            return run_cases(SdpParseTarget(), fi.sdp_bodies(live=False), cases, seed_value=seed, progress=progress)
    with quiet_logs(), LogWatch() as watch, serve_app(sip=name in ("sip", "http"),
                                                      max_calls=WEBRTC_MAX_CALLS if name == "webrtc" else 8) as (url, app):
        watch.take()  # start-up noise is not the fuzz's
        if name == "sip":
            from ivr.bench.fuzz_sip import SipTarget

            target, strategy = SipTarget(app, watch), fi.sip_messages()
        elif name == "http":
            from ivr.bench.fuzz_web import HttpTarget

            target, strategy = HttpTarget(url, app, watch), fi.http_requests()
        elif name == "webrtc":
            from ivr.bench.fuzz_web import WebRtcTarget

            target, strategy = WebRtcTarget(url, app, watch), fi.webrtc_offers()
        else:
            raise ValueError(f"unknown fuzz target {name!r} (choose from {', '.join(TARGETS)})")
        return run_cases(target, strategy, cases, seed_value=seed, progress=progress)


def run(args: argparse.Namespace) -> int:
    try:
        import hypothesis  # noqa: F401
    except ModuleNotFoundError:
        print("ivr bench fuzz needs Hypothesis: pip install -e '.[dev]'", file=sys.stderr)
        return 2
    names = [t.strip() for t in args.targets.split(",") if t.strip()]
    bad = [t for t in names if t not in TARGETS]
    if bad or args.cases < 1:
        print(f"unknown target(s) {', '.join(bad)}; choose from {', '.join(TARGETS)}" if bad else "--cases must be >= 1",
              file=sys.stderr)
        return 2
    results = []
    for name in names:
        step = max(1, args.cases // 10)
        print(f"fuzzing {name}: {args.cases} cases ...", flush=True)
        res = run_target(name, args.cases, seed=args.seed,
                         progress=lambda i, step=step: print(f"  {i}", flush=True) if i % step == 0 else None)
        print(res.summary(), flush=True)
        results.append(res)
    from ivr.bench.report import markdown_table, write_section

    rows = [[r.target, r.cases, r.crashes, r.hangs, round(r.rate, 1), round(r.seconds, 1)] for r in results]
    table = markdown_table(["target", "cases", "crashes", "hangs", "cases/s", "seconds"], rows)
    print(table)
    if not args.no_write:
        body = (
            f"`ivr bench fuzz --cases {args.cases} --seed {args.seed}`: Hypothesis-generated inputs, well-formed but "
            "odd and malformed, against the real service on loopback (`create_app` under uvicorn, the SIP gateway "
            "started as `ivr serve` starts it). A crash is a 5xx other than the deliberate 503 (and SIP's 505/513, "
            "and the 500 RFC 3261 §12.2.2 prescribes for an in-dialog request whose CSeq is not above the last), "
            "a traceback or error in the service's log, or a dropped connection; a hang is a case not answered "
            "within its timeout (SIP: an OPTIONS probe after every case, 5 s; HTTP: 10 s). After each run the "
            "gateway must still answer OPTIONS over UDP and TCP and `/health` must be 200. CI runs 2,000 cases "
            "per target (tests/test_fuzz_*.py).\n\n" + table + "\n\n"
            + "Answers seen (status codes; for SDP the parser's verdicts; 0 = refused by the HTTP client itself):\n\n"
            + "\n".join(f"- {r.target}: {_outcomes(r)}" for r in results)
        )
        path = write_section("fuzz", "Fuzzing (ivr bench fuzz)", body)
        print(f"wrote {path}")
    return 1 if any(r.crashes or r.hangs for r in results) else 0


def _outcomes(result: Any) -> str:
    seen = ", ".join(f"{k}: {n}" for k, n in result.seen.items())
    kinds = "; failures: " + ", ".join(f"{n} x {k}" for k, n in result.kinds.most_common(3)) if result.kinds else ""
    return (seen or "-") + kinds
