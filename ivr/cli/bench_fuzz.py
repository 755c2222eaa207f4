"""`ivr bench fuzz`: command line of the fuzzing benchmark (targets and harness are ivr.bench.fuzz*)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ivr.bench.fuzz import DEFAULT_CASES, TARGETS, run_target


def register(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser("fuzz", help="fuzz SIP, SDP, the HTTP APIs and WebRTC offers (docs/benchmarks.md)")
    p.add_argument("--cases", type=int, default=DEFAULT_CASES, help=f"cases per target (default {DEFAULT_CASES})")
    p.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated subset of {','.join(TARGETS)}")
    p.add_argument("--seed", type=int, default=12, help="Hypothesis seed (runs are reproducible)")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    p.set_defaults(func=run)


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
            "gateway must still answer OPTIONS over UDP and TCP and `/health` must be 200. CI runs a fixed corpus "
            "of nasty cases, then 1,000 generated ones per target (SDP: 2,000) (tests/test_fuzz_*.py).\n\n" + table + "\n\n"
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
