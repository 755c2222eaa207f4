"""`ivr bench calls`: turn latency through the whole call pipeline and how many concurrent calls keep real time.

Each simulated caller is an in-process line (:class:`~ivr.call.local.LocalPort`) into a real session: real
webrtcvad endpointing, the real dialogue over the demo shop, real espeak-ng speech and the paced playout. The
caller speaks an espeak-ng Mandarin line after the greeting (reference transcript instead of ASR, as no
Mandarin model can be installed here), waits for the answer, then keys a digit. Latency is speech end (VAD) or
key press -> first bot audio frame sent. A level "keeps real time" when no call's outbound stream has a gap over
60 ms and the playout clock never had to re-anchor.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

CALLER_LINE = "我想查一下我的订单"


async def measure(levels: list[int]) -> tuple[list[list[object]], str]:
    """One table row per concurrency level, and the summary line (reference transcripts, no ASR)."""
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
