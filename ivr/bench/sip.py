"""`ivr bench sip`: a sipp load run against the SIP gateway (in-process, loopback).

Each call: INVITE (PCMA + telephone-event), ACK, the caller streams ``--seconds`` of A-law speech-like audio
(sipp ``rtp_stream``), then BYE. The bot side plays a tone the whole call and counts what it receives. Reports
failed calls, open calls afterwards (leaks), frames each way and the gateway's CPU use.
"""

from __future__ import annotations

import asyncio
import re
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ivr.telephony.sip.sipp_scenario import caller_scenario


def _caller_audio(seconds: float) -> bytes:
    """A-law 'speech': a 300 Hz tone with a syllable-rate envelope (loud and never digital silence)."""
    from ivr.audio import g711
    from ivr.audio.frames import AudioFrame

    t = np.arange(int(seconds * 8000)) / 8000
    x = 0.3 * np.sin(2 * np.pi * 300 * t) * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t))
    return g711.alaw_encode(AudioFrame.from_numpy(x, 8000))


async def run_load(calls: int = 20, rate: float = 2.0, seconds: float = 20.0, max_calls: int | None = None,
                   workdir: Path | None = None, bot: str = "tone") -> dict:
    """Run the load and return the figures (also used by the smoke test in tests/test_sip_load.py)."""
    from ivr.audio.frames import AudioFrame, frames_of
    from ivr.config import Settings
    from ivr.events import Hangup
    from ivr.telephony.sip import SipGateway

    if shutil.which("sipp") is None:
        raise RuntimeError("sipp is not installed (Debian package sip-tester)")
    work = Path(workdir or tempfile.mkdtemp(prefix="ivr-bench-sip-"))
    (work / "load.xml").write_text(caller_scenario("ivr load", pause_ms=int(seconds * 1000), rtp_stream="caller.alaw"))
    (work / "caller.alaw").write_bytes(_caller_audio(seconds))
    t = np.arange(16000) / 16000
    tone = list(frames_of(AudioFrame.from_numpy(0.2 * np.sin(2 * np.pi * 440 * t), 16000)))
    received: list[int] = []

    async def handler(port) -> None:
        got = 0

        async def talk() -> None:
            while True:
                for f in tone:
                    await port.send_audio(f)
                    await asyncio.sleep(0)  # a hung-up call's send_audio returns at once: never hog the loop

        speaker = asyncio.create_task(talk())
        try:
            while not isinstance(ev := await port.recv(), Hangup):
                got += isinstance(ev, AudioFrame)
        finally:
            speaker.cancel()
            received.append(got)

    manager = None
    records: list = []
    if bot == "real":
        from ivr.config import load_settings
        from ivr.wiring import call_manager

        settings = load_settings({"data_dir": str(work / "data"), "host": "127.0.0.1", "sip_port": 0,
                                  "max_calls": max_calls or max(calls, 8)})
        manager = await asyncio.to_thread(call_manager, settings)
        await manager.start()

        async def handler(port) -> None:  # the real bot instead of the tone
            rec = await manager.run_call(port)
            if rec is not None:
                records.append(rec)

    gw = SipGateway(Settings(host="127.0.0.1", sip_port=0, max_calls=max_calls or max(calls, 8)), handler)
    await gw.start()
    cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    peak = 0
    proc = await asyncio.create_subprocess_exec(
        "sipp", f"127.0.0.1:{gw.port}", "-sf", "load.xml", "-m", str(calls), "-r", str(rate), "-l", str(calls),
        "-i", "127.0.0.1", "-timeout", f"{int(calls / rate + seconds + 60)}s", "-timeout_error", "-trace_err",
        "-nostdin", cwd=work, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    waiter = asyncio.create_task(proc.communicate())
    while not waiter.done():
        peak = max(peak, gw.open_calls)
        await asyncio.sleep(0.2)
    out = (await waiter)[0].decode("utf-8", "replace")
    await asyncio.sleep(1.0)
    open_after = gw.open_calls
    cpu1, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - wall0
    sent = gw.counters["answered"]
    await gw.stop()
    bot_figures: dict = {}
    if manager is not None:
        await manager.shutdown(grace_s=5)
        greeted = [r for r in records if r.turns and r.turns[0].latency_ms is not None]
        lat = sorted(t.latency_ms for r in records for t in r.turns if t.latency_ms is not None)
        bot_figures = {
            "records": len(records), "greeted": len(greeted),
            "turn_latency_p50_ms": float(np.percentile(lat, 50)) if lat else None,
            "turn_latency_p95_ms": float(np.percentile(lat, 95)) if lat else None,
            "playout_stalls": sum(int(r.extra.get("playout_stalls", 0)) for r in records),
            "outcomes": sorted({r.outcome for r in records}),
        }

    def last(label: str) -> int:
        rows = [r for r in out.splitlines() if r.strip().startswith(label)]
        nums = re.findall(r"\d+", rows[-1]) if rows else []
        return int(nums[-1]) if nums else -1

    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    return {
        "calls": calls, "rate": rate, "seconds": seconds, "sipp_rc": proc.returncode,
        "successful": last("Successful call"), "failed": last("Failed call"), "answered": sent,
        "peak_open_calls": peak, "open_calls_after": open_after,
        "frames_received_per_call_min": min(received) if received else 0,
        "frames_expected_per_call": int(seconds * 50),
        "cpu_percent_of_one_core": 100.0 * cpu / wall if wall else 0.0, "wall_s": wall,
        "sipp_tail": out[-1500:], "bot": bot, **bot_figures,
    }
