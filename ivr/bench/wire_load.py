"""`ivr bench calls --wire`: N concurrent talking SIP callers against a real ``ivr serve``, measured on the wire.

One process, one asyncio loop, no per-call threads (:mod:`ivr.bench.wire_sip`): each caller dials over UDP,
says recorded speech as pre-encoded PCMU RTP paced at 20 ms (the Korean clips from ``../shared`` with the Korean
Vosk model, so real recognition happens; espeak-ng Mandarin when ``../shared`` is absent), with an optional
constant line noise under everything it sends. A caller speaks when the bot is quiet, waits for the reply, lets
it finish, and idles so that its speech fills ``talk_ratio`` of the time (1.0: speaks again as soon as the bot
stops). Per utterance, on the caller's own sockets:

* heard: send time of the caller's last loud packet -> arrival of the bot's first loud packet after it;
* lost: no loud bot packet within :data:`LOST_AFTER_S`;
* stalls: a gap of more than :data:`STALL_GAP_S` between two bot packets in the middle of a reply (the server
  sends RTP continuously, silence between prompts, so any such gap is a playout hiccup);
* no-input while speaking: no-input reprompts in the server's record of the call (the caller never leaves
  the line silent for the no-input time, so every one of them came while the caller was talking);
* keypad calls: calls the server's overload guard answered in keypad mode (``asr_overload_backlog_s``): a level
  with any does not hold the targets (printed, and in the level's notes).
"""

from __future__ import annotations

import asyncio
import bisect
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ivr.bench.wire_sip import Clip, WireCall, encode_clip, line_noise, noise_packets

LOST_AFTER_S = 6.0
STALL_GAP_S = 0.1  # five packet times without a packet
QUIET_S = 0.6  # the bot's reply is over after this long without a loud packet
# Callers of a level dial at even intervals over this long (k * spread / n): peak-hour calls do not arrive in the
# same millisecond, and callers dialled together stay in step (same greeting, same reprompts), so every one of
# them would speak at the same moment for the whole level: a burst no real hotline sees.
ARRIVAL_SPREAD_S = 8.0
MAX_IDLE_S = 4.0  # below the shipped no-input time (7 s): an idle caller never provokes a reprompt


@dataclass
class CallResult:
    heard_ms: list[float] = field(default_factory=list)
    utterances: int = 0
    talk_s: float = 0.0  # seconds of speech sent
    lost: int = 0
    stalls: int = 0
    no_input: int = 0
    keypad: int = 0  # calls the server answered in keypad mode (its overload guard: recognition was behind)
    late_max_ms: float = 0.0
    record_ids: list[str] = field(default_factory=list)
    trace_ms: list[float] = field(default_factory=list)  # the server's own latency_ms of the spoken turns
    stages_ms: list[dict[str, float]] = field(default_factory=list)  # the trace's stages of those turns
    errors: list[str] = field(default_factory=list)


def stalls(rx: list[tuple[float, bool]], gap_s: float = STALL_GAP_S, quiet_s: float = QUIET_S) -> int:
    """Gaps longer than ``gap_s`` between consecutive bot packets inside a reply (a run of loud packets whose
    loud parts are less than ``quiet_s`` apart)."""
    n, last_loud = 0, None
    for (t0, _l0), (t1, l1) in zip(rx, rx[1:], strict=False):
        if _l0:
            last_loud = t0
        if t1 - t0 > gap_s and last_loud is not None and t0 - last_loud < quiet_s and l1:
            n += 1
        if l1:
            last_loud = t1
    return n


def stage_medians(turns: list[dict[str, float]], p: int = 50) -> dict[str, float]:
    """Milliseconds of each trace stage at percentile ``p`` (default the median) over ``turns``
    (``record_stages_ms`` dicts), in stage order."""
    from ivr.call.trace import STAGES
    from ivr.tables import percentiles

    return {k: round(percentiles(v, (p,))[f"p{p}"], 1) for k in STAGES if (v := [t[k] for t in turns if k in t])}


def first_loud_after(rx: list[tuple[float, bool]], t: float, start: int = 0) -> float | None:
    for at, loud in rx[start:]:
        if at > t and loud:
            return at
    return None


async def _wait_loud(call: WireCall, after: float, limit_s: float) -> float | None:
    """Arrival of the first loud bot packet after ``after`` (which may lie in the past: a reply can start while
    the caller still sends the quiet tail of its clip); None after ``limit_s`` or when the call ended."""
    deadline = time.monotonic() + limit_s
    start = bisect.bisect_right(call.rx, (after, True))  # arrivals are appended in time order
    while call.hung_up is None:
        found = first_loud_after(call.rx, after, start)
        if found is not None:
            return found
        start = max(0, len(call.rx) - 1)
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.05)
    return None


async def _wait_quiet(call: WireCall, quiet_s: float, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while call.hung_up is None and time.monotonic() < deadline:
        now = time.monotonic()
        recent = [loud for at, loud in call.rx[-int(quiet_s / 0.02) - 10:] if at > now - quiet_s]
        if not any(recent):
            return
        await asyncio.sleep(0.05)


async def talking_caller(server: tuple[str, int], clips: list[Clip], noise: list[bytes], seconds: float,
                         talk_ratio: float, offset: int = 0, start_after: float = 0.0) -> CallResult:
    """One line kept busy for ``seconds`` from ``start_after`` on: dials, talks turn after turn, redials if the bot
    hangs up."""
    out = CallResult()
    await asyncio.sleep(start_after)
    end = time.monotonic() + seconds
    i = offset
    while time.monotonic() < end:
        call = WireCall(server, noise)
        await call.open()
        try:
            dialled = time.monotonic()
            await call.dial()
            out.record_ids.append(call.record_id)
            await _wait_loud(call, dialled, 20.0)  # the greeting
            await _wait_quiet(call, QUIET_S, 30.0)
            while time.monotonic() < end and call.hung_up is None:
                clip = clips[i % len(clips)]
                i += 1
                utt = call.say(clip)
                await utt.done.wait()
                if call.hung_up is not None or utt.last_loud is None:
                    break
                out.utterances += 1
                out.talk_s += clip.duration
                heard = await _wait_loud(call, utt.last_loud, LOST_AFTER_S)
                if heard is None:
                    out.lost += call.hung_up is None
                    continue
                out.heard_ms.append((heard - utt.last_loud) * 1000)
                await _wait_quiet(call, QUIET_S, 30.0)
                assert utt.started is not None
                idle = clip.duration / talk_ratio - (time.monotonic() - utt.started)
                await asyncio.sleep(min(MAX_IDLE_S, max(0.0, idle)))
        except (ConnectionError, TimeoutError) as e:
            out.errors.append(str(e))
            await asyncio.sleep(1.0)
        finally:
            await call.hangup()
            out.stalls += stalls(call.rx)
            out.late_max_ms = max(out.late_max_ms, call.late_max_s * 1000)
    return out


def load_clips(noise_dbfs: float | None) -> tuple[list[Clip], list[bytes], str]:
    """The callers' utterances (8 kHz PCMU, noise mixed in) and the line between them."""
    from ivr.bench.asr import speech_clips

    frames, source = speech_clips(8000)
    frames = [f for f in frames if f.duration <= 8.0] or frames  # a caller's turn, not a lecture
    noise_pcm = line_noise(noise_dbfs) if noise_dbfs is not None else None
    return [encode_clip(f.pcm, noise_pcm) for f in frames], noise_packets(noise_pcm), source


def _read_records(db_url: str, results: list[CallResult]) -> None:
    """No-input reprompts and the server's own turn latency, from the records the server stored."""
    from ivr.call.trace import record_stages_ms
    from ivr.services.records.store import RecordStore

    store = RecordStore(db_url)
    for r in results:
        for rid in r.record_ids:
            rec = store.get(rid) if rid else None
            if rec is None:
                continue
            r.no_input += sum(1 for t in rec.turns if t.kind == "no_input")
            r.keypad += rec.asr_mode == "dtmf"
            spoken = [t for t in rec.turns if t.kind == "speech" and t.latency_ms is not None]
            r.trace_ms += [t.latency_ms for t in spoken]  # type: ignore[misc]
            r.stages_ms += [record_stages_ms(t.timing) for t in spoken if t.timing]


async def _settle(db_url: str, results: list[CallResult], timeout_s: float = 15.0) -> None:
    """Records are written when the server finishes a call: wait until all are there."""
    from ivr.services.records.store import RecordStore

    store = RecordStore(db_url)
    ids = [rid for r in results for rid in r.record_ids if rid]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        recs = await asyncio.to_thread(lambda: [store.get(i) for i in ids])
        if all(x is not None and x.ended_at is not None for x in recs):
            return
        await asyncio.sleep(0.5)


async def bench_wire(levels: list[int], seconds: float, talk_ratio: float, noise_dbfs: float | None,
                     model: str, data_dir: Path | None = None, warm_s: float = 0.0) -> tuple[list[list], str, dict]:
    """Start ``ivr serve`` (real Vosk ``model``), run each level, stop it. Returns rows, the capacity line, and
    details (server trace medians, generator health) for the report. ``warm_s``: each level's callers first talk
    this long unmeasured (a sustained peak's steady state) and hang up; the measured calls follow at once."""
    from ivr.bench.calls import rows_ok_upto
    from ivr.bench.report import percentiles
    from ivr.bench.wire_server import ServeProcess, cpu_seconds, rss_mb
    from ivr.config import load_settings

    clips, noise, source = load_clips(noise_dbfs)
    endpoint_ms = load_settings().vad_trailing_silence_ms
    tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="ivr-wire-")
    root = data_dir or Path(tmp.name)  # type: ignore[union-attr]
    server = ServeProcess(root, {"IVR_ASR_MODEL": model}, max_calls=max(levels) + 2)
    rows: list[list] = []
    details: dict = {"source": source, "trace_p50": {}, "late_max_ms": {}, "gen_cpu": {}, "errors": {}, "load": {},
                     "talk": {}}
    try:
        await asyncio.to_thread(server.start)
        await talking_caller(server.sip, clips, noise, 8.0, 1.0)  # warm-up: model pages, recogniser pool
        db = f"sqlite:///{root / 'ivr.db'}"
        for n in levels:
            rss0 = rss_mb(server.pid)  # before the warm phase: RSS per call counts what the level's calls hold
            if warm_s:
                await asyncio.gather(*(talking_caller(server.sip, clips, noise, warm_s, talk_ratio, k + 7,
                                                      k * ARRIVAL_SPREAD_S / n) for k in range(n)))
            cpu0, own0, wall0 = cpu_seconds(server.pid), time.process_time(), time.monotonic()
            peak = [0.0]

            async def sample_rss(peak: list[float] = peak) -> None:
                while True:
                    await asyncio.sleep(1.0)
                    peak[0] = max(peak[0], rss_mb(server.pid))

            sampler = asyncio.create_task(sample_rss())
            results = await asyncio.gather(*(talking_caller(server.sip, clips, noise, seconds, talk_ratio, k,
                                                            k * ARRIVAL_SPREAD_S / n) for k in range(n)))
            sampler.cancel()
            wall = time.monotonic() - wall0
            cpu = (cpu_seconds(server.pid) - cpu0) / wall / (os.cpu_count() or 1)
            gen_cpu = (time.process_time() - own0) / wall / (os.cpu_count() or 1)
            await _settle(db, results)
            await asyncio.to_thread(_read_records, db, results)
            heard = [x for r in results for x in r.heard_ms]
            p = percentiles(heard) if heard else None
            lost, no_input, stall = (sum(getattr(r, k) for r in results) for k in ("lost", "no_input", "stalls"))
            keypad = sum(r.keypad for r in results)
            ok = p is not None and p["p95"] <= endpoint_ms + 400 and lost == 0 and keypad == 0
            details.setdefault("keypad", {})[n] = keypad
            trace = [x for r in results for x in r.trace_ms]
            details["trace_p50"][n] = round(percentiles(trace)["p50"]) if trace else None
            details.setdefault("stages_p50", {})[n] = stage_medians([s for r in results for s in r.stages_ms])
            details.setdefault("stages_p95", {})[n] = stage_medians([s for r in results for s in r.stages_ms], 95)
            details["late_max_ms"][n] = round(max(r.late_max_ms for r in results))
            details["gen_cpu"][n] = round(100 * gen_cpu)
            details["load"][n] = round(os.getloadavg()[0], 1)  # the machine's, at the end of the level
            details["talk"][n] = round(100 * sum(r.talk_s for r in results) / (n * wall))  # share spoken
            details["errors"][n] = sorted({e for r in results for e in r.errors})
            rows.append([n, sum(r.utterances for r in results),
                         *(round(p[k]) if p else "-" for k in ("p50", "p95", "max")),
                         lost, no_input, stall, f"{100 * cpu:.0f} %", round(max(0.0, peak[0] - rss0) / n, 1),
                         "yes" if ok else "no"])
            print(rows[-1], f"server trace p50 {details['trace_p50'][n]} ms, generator late max "
                  f"{details['late_max_ms'][n]} ms, generator CPU {details['gen_cpu'][n]} %, keypad calls {keypad}, "
                  f"stage p50 ms "
                  f"{details['stages_p50'][n]}, p95 ms {details['stages_p95'][n]}", flush=True)
    finally:
        await asyncio.to_thread(server.stop)
        if tmp is not None:
            tmp.cleanup()
    best = rows_ok_upto(rows)
    summary = (f"Capacity: **{best}** concurrent SIP callers hold caller-heard p95 <= endpoint + 400 ms "
               f"({endpoint_ms + 400} ms) with no lost utterance (speech: {source}; model {model}; talk ratio "
               f"{talk_ratio:.0%} of each turn (the caller listens to the whole reply first); line noise {'off' if noise_dbfs is None else f'{noise_dbfs:.0f} dBFS'}; "
               f"{seconds:.0f} s per level{f', after {warm_s:.0f} s of the same load unmeasured' if warm_s else ''}).")
    return rows, summary, details


HEADERS = ["calls", "utterances", "heard p50 ms", "heard p95 ms", "heard max ms", "lost", "no-input while speaking",
           "stalls", "server CPU (of 2 cores)", "RSS per call MB", "holds targets"]
