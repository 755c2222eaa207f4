"""`ivr bench asr`: Vosk load time and memory, first-speech stall (fresh vs pooled recogniser), CPU per audio second
for 1..N concurrent real-time call streams, recogniser memory over a long call (with and without recycling),
first-partial and final latency after our endpoint. Prints percentiles and writes docs/benchmarks.md."""

from __future__ import annotations

import asyncio
import io
import subprocess
import time
from pathlib import Path

from ivr.audio.frames import AudioFrame, concat_frames, frames_of
from ivr.bench.report import markdown_table, percentiles

SHARED_KO = Path(__file__).resolve().parents[2].parent / "shared" / "speech" / "ko"
ESPEAK_LINES = ["您好我想查一下我的订单", "订单号是一二三四五六", "什么时候能发货", "我要退货谢谢"]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def speech_clips(rate: int) -> tuple[list[AudioFrame], str]:
    """Recorded Korean from ../shared when present (read in place, never copied), else espeak-ng Mandarin."""
    from ivr.audio.files import read_audio

    if SHARED_KO.is_dir():
        clips = [read_audio(p, rate) for p in sorted(SHARED_KO.glob("*.wav"))]
        return clips, f"{len(clips)} recorded Korean clips from ../shared"
    import soundfile as sf

    from ivr.audio.resample import resample

    clips = []
    for text in ESPEAK_LINES:
        wav = subprocess.run(["espeak-ng", "-v", "cmn-latn-pinyin", "--stdout", text], capture_output=True, check=True)
        data, sr = sf.read(io.BytesIO(wav.stdout), dtype="int16")
        clips.append(resample(AudioFrame.from_numpy(data, sr), rate))
    return clips, "espeak-ng Mandarin (../shared absent)"


def call_audio(clips: list[AudioFrame], seconds: float, rate: int) -> AudioFrame:
    """Utterances separated by 1 s pauses, as on a call, until ``seconds`` of audio."""
    parts, total, i = [AudioFrame.silence(0.5, rate)], 0.5, 0
    while total < seconds:
        c = clips[i % len(clips)]
        parts += [c, AudioFrame.silence(1.0, rate)]
        total += c.duration + 1.0
        i += 1
    return concat_frames(parts)


def stall_s(rec, pcm: bytes, rate: int) -> float:
    worst = 0.0
    step = rate // 50 * 2
    for i in range(0, len(pcm), step):
        t = time.perf_counter()
        rec.AcceptWaveform(pcm[i : i + step])
        worst = max(worst, time.perf_counter() - t)
    rec.FinalResult()
    return worst


async def stream_call(engine, audio: AudioFrame, stats: dict) -> None:
    """One caller speaking in real time through a Listener."""
    from ivr.asr.listener import Listener
    from ivr.asr.vad import VadOptions
    from ivr.events import SpeechEnded, SpeechStarted, Transcript

    listener = Listener(audio.sample_rate, VadOptions(), engine)
    await listener.open()
    t0 = time.perf_counter()
    started_at = None
    for frame in frames_of(audio, 20):
        due = t0 + frame.pts + frame.duration  # the frame's last sample is on the wire now
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            stats["late"].append(-delay)
        for ev in await listener.push(frame):
            now = time.perf_counter()
            if isinstance(ev, SpeechStarted):
                started_at = now
            elif isinstance(ev, Transcript) and not ev.final and started_at is not None:
                stats["first_partial"].append(now - started_at)
                started_at = None
            elif isinstance(ev, SpeechEnded):
                pass
            elif isinstance(ev, Transcript) and ev.final:
                # from the moment the endpointing frame was on the wire (includes any lateness of the stream)
                stats["final"].append(now - due)
                stats["empty"] += not ev.text
    await listener.close()


async def concurrency(model_dir: Path, audio: AudioFrame, n: int) -> dict:
    from ivr.asr.engine import AsrEngine

    engine = AsrEngine(model_dir, audio.sample_rate, pool_size=n, max_workers=2)
    await engine.warm_up()
    stats: dict = {"late": [], "first_partial": [], "final": [], "empty": 0}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(stream_call(engine, audio, stats) for _ in range(n)))
    stats["cpu_per_audio_s"] = (time.process_time() - cpu0) / (n * audio.duration)
    stats["wall"] = time.perf_counter() - wall0
    stats["cold_opens"] = engine.stats().cold_opens
    await engine.close()
    return stats


async def long_call(model_dir: Path, clips: list[AudioFrame], rate: int, speech_s: float, recycle_s: float) -> list:
    """RSS after each utterance while one call's stream hears ``speech_s`` of speech."""
    from ivr.asr.engine import AsrEngine, release_memory

    engine = AsrEngine(model_dir, rate, pool_size=1, recycle_speech_s=recycle_s)
    await engine.warm_up()
    release_memory()
    base = rss_mb()
    stream = await engine.open_stream()
    heard, i, samples = 0.0, 0, []
    while heard < speech_s:
        clip = clips[i % len(clips)]
        for f in frames_of(clip, 100):
            await stream.feed(f)
        await stream.finish()
        heard += clip.duration
        i += 1
        samples.append((heard, rss_mb() - base))
    await stream.close()
    recycled = engine.stats().recycled
    await engine.close()
    return samples + [("recycled", recycled)]


def measure(model_dir: Path, lang: str, model_name: str, rate: int, levels: list[int], seconds: float,
            long_call_s: float) -> tuple[str, float, float]:
    """Run the four measurements, printing as it goes; returns the report body, model load s and MB."""
    import vosk

    from ivr.asr.engine import AsrEngine, load_model, release_memory

    clips, source = speech_clips(rate)
    out: list[str] = [f"Model `{model_dir.name if model_dir.name != 'model' else model_name}` ({lang}), call audio "
                      f"{rate} Hz, speech: {source}."]

    # 1. model load
    r0, t = rss_mb(), time.perf_counter()
    model = load_model(model_dir)
    load_s, load_mb = time.perf_counter() - t, rss_mb() - r0
    print(f"model load: {load_s:.2f} s, +{load_mb:.0f} MB RSS")
    out.append(f"\n**Model load:** {load_s:.2f} s, +{load_mb:.0f} MB RSS (once per process, shared by all calls).")

    # 2. first-speech stall: fresh recogniser vs one warmed by the pool
    eng = AsrEngine(model_dir, rate, pool_size=0)
    speech = concat_frames(clips[:2])
    speech_pcm = speech.pcm if eng.recognizer_rate == rate else None
    assert speech_pcm is not None, "bench expects the recogniser at the call rate"
    fresh, warm, create = [], [], []
    for _ in range(3):
        t = time.perf_counter()
        rec = vosk.KaldiRecognizer(model, eng.recognizer_rate)
        create.append(time.perf_counter() - t)
        fresh.append(stall_s(rec, speech_pcm, rate))
        del rec
        pooled = eng._create()  # what the pool hands out: created and warmed with synthetic audio
        warm.append(stall_s(pooled.rec, speech_pcm, rate))
        del pooled
    release_memory()
    rows = [["fresh recogniser", *_ms(percentiles(fresh))], ["pooled (warmed)", *_ms(percentiles(warm))]]
    table = markdown_table(["worst 20 ms chunk on first speech", "p50 ms", "p90 ms", "max ms"], rows)
    print(table)
    out.append(f"\n**First-speech stall** (creation itself {1000 * max(create):.0f} ms; pool warm-up "
               f"{1000 * max(eng.stats().warm_s):.0f} ms, done before a call needs it):\n\n{table}")

    # 3. concurrent real-time streams
    audio = call_audio(clips, seconds, rate)
    rows = []
    for n in levels:
        s = asyncio.run(concurrency(model_dir, audio, n))
        fp, fi, late = percentiles(s["first_partial"]), percentiles(s["final"]), percentiles(s["late"] or [0.0])
        rows.append([n, round(s["cpu_per_audio_s"], 3), *_ms(fp)[:2], *_ms(fi), round(1000 * late["max"]),
                     s["empty"], s["cold_opens"]])
        print(f"{n} stream(s): CPU {s['cpu_per_audio_s']:.3f} s per audio s, first partial p50 {_ms(fp)[0]} ms, "
              f"final after endpoint p50 {_ms(fi)[0]} ms p90 {_ms(fi)[1]} ms, max frame lateness "
              f"{1000 * late['max']:.0f} ms")
    table = markdown_table(["streams", "CPU s / audio s", "first partial p50 ms", "p90 ms",
                            "final after endpoint p50 ms", "p90 ms", "max ms", "max frame lateness ms",
                            "empty finals", "cold opens"], rows)
    out.append(f"\n**Concurrent real-time calls** ({audio.duration:.0f} s each, VAD + pooled Vosk via Listener, each "
               f"stream paced by the wall clock like a live call; first partial measured from SpeechStarted; final "
               f"after endpoint = from the wire time of the frame that ended the utterance; frame lateness = how far "
               f"a stream's push fell behind its wire time):\n\n{table}")

    # 4. memory per recogniser over a long call
    rows = []
    for label, recycle in (("no recycling", 1e9), ("recycle after 60 s", 60.0)):
        samples = asyncio.run(long_call(model_dir, clips, rate, long_call_s, recycle))
        recycled = samples.pop()[1]
        marks = [s for s in (20, 60, 100, long_call_s) if s <= long_call_s]
        picked = [next((mb for h, mb in samples if h >= m), samples[-1][1]) for m in marks]
        rows.append([label, *[f"+{mb:.0f}" for mb in picked], recycled])
        print(f"long call, {label}: RSS growth " + ", ".join(f"{m:.0f}s:+{mb:.0f}MB" for m, mb in zip(marks, picked,
                                                                                              strict=True)))
    headers = ["recogniser", *[f"RSS after {m:.0f} s speech (MB)" for m in marks], "recycled"]
    out.append(f"\n**Memory of one call's recogniser** (RSS growth over the warmed pool):\n\n"
               f"{markdown_table(headers, rows)}")
    return "\n".join(out), load_s, load_mb


def _ms(p: dict) -> list[int]:
    return [round(1000 * p["p50"]) if p["n"] else 0, round(1000 * p["p90"]) if p["n"] else 0,
            round(1000 * p["max"]) if p["n"] else 0]
