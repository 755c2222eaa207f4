"""`ivr bench sip`: command line of the sipp load benchmark (the load run is ivr.bench.sip)."""

from __future__ import annotations

import argparse
import asyncio


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sip", help="sipp load run against the SIP gateway (loopback)")
    p.add_argument("--calls", type=int, default=20, help="number of calls (default 20)")
    p.add_argument("--rate", type=float, default=2.0, help="calls per second (default 2)")
    p.add_argument("--seconds", type=float, default=20.0, help="audio per call in seconds (default 20)")
    p.add_argument("--bot", choices=["tone", "real"], default="tone",
                   help="tone: the gateway alone; real: every call through the real call session and dialogue")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ivr.bench.report import markdown_table, write_section
    from ivr.bench.sip import run_load
    from ivr.errors import UserError

    if args.calls < 1 or args.rate <= 0 or args.seconds <= 0:
        raise UserError("--calls, --rate and --seconds must be positive")
    try:
        r = asyncio.run(run_load(args.calls, args.rate, args.seconds, bot=args.bot))
    except RuntimeError as e:
        raise UserError(str(e)) from None
    if args.bot == "real":
        return _report_real(r, args.no_write)
    rows = [[r["calls"], f"{r['rate']:g}", f"{r['seconds']:g}", r["successful"], r["failed"], r["peak_open_calls"],
             r["open_calls_after"], f"{r['frames_received_per_call_min']}/{r['frames_expected_per_call']}",
             f"{r['cpu_percent_of_one_core']:.0f}%"]]
    table = markdown_table(["calls", "calls/s", "audio s/call", "ok", "failed", "peak open", "open after",
                            "min frames in/expected", "gateway CPU (one core)"], rows)
    print(table)
    if not args.no_write:
        body = ("sipp UAC load against `SipGateway` on loopback: each call streams A-law audio (sipp rtp_stream) "
                "while the bot streams a tone back; G.711 <-> 16 kHz resampling both ways, RFC 3550 jitter buffer.\n\n"
                + table)
        print(f"written to {write_section('sip', 'SIP gateway load (ivr bench sip)', body)}")
    return 0 if r["failed"] == 0 and r["open_calls_after"] == 0 else 1


def _report_real(r: dict, no_write: bool) -> int:
    from ivr.bench.report import markdown_table, write_section

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    rows = [[r["calls"], f"{r['rate']:g}", f"{r['seconds']:g}", r["successful"], r["failed"], r["peak_open_calls"],
             r["open_calls_after"], f"{r['greeted']}/{r['records']}", ms(r["turn_latency_p50_ms"]),
             ms(r["turn_latency_p95_ms"]), r["playout_stalls"], f"{r['cpu_percent_of_one_core']:.0f}%"]]
    table = markdown_table(["calls", "calls/s", "audio s/call", "ok", "failed", "peak open", "open after",
                            "greeted/records", "turn p50 ms", "turn p95 ms", "playout stalls",
                            "process CPU (one core)"], rows)
    print(table)
    if not no_write:
        body = ("sipp UAC load against `ivr serve`'s parts on loopback: the SIP gateway hands every call to the real "
                "CallManager (call session, webrtcvad, the dialogue over the demo shop in keypad mode, espeak-ng, "
                "records). The caller streams A-law speech-like audio the whole call (it talks over the greeting). "
                "Turn latency: speech end / key press / answer -> first bot audio sent.\n\n" + table)
        print(f"written to {write_section('sip-bot', 'SIP load through the real bot (ivr bench sip --bot real)', body)}")
    ok = r["failed"] == 0 and r["open_calls_after"] == 0 and r["greeted"] == r["records"] == r["calls"]
    return 0 if ok else 1
