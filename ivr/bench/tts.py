"""`ivr bench tts`: synthesis time per sentence, real-time factor, first-audio latency (stream vs whole),
prompt-cache and recorded-prompt hit times, concurrency and stability. Writes the "tts" section of
docs/benchmarks.md."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np

from ivr.bench.report import percentiles

# Typical replies of a shop hotline (benchmark input only; the bot's real prompts live in the language pack).
SENTENCES = [
    "您好，欢迎致电客服中心。",
    "请问有什么可以帮您？",
    "您的订单已经发货，预计明天送达。",
    "请说出您的订单号，或者输入手机号后四位。",
    "好的，正在为您查询，请稍候。",
    "这个订单目前在运输途中，快递公司是顺丰速运。",
    "退货申请已经提交，退款将在三到五个工作日内原路返回。",
    "抱歉，我没有听清楚，请您再说一遍。",
    "需要为您转接人工客服吗？",
    "感谢您的来电，祝您生活愉快，再见。",
]
LONG_REPLY = "".join(SENTENCES[2:8])


async def measure(settings, count: int, concurrency: int, rate: int) -> tuple[list[list[object]], list[str]]:
    """Table rows (percentiles per measure) and the notes under the table."""
    from ivr.tts import get_tts

    rss0 = _rss_mib()
    t0 = time.perf_counter()
    tts = get_tts(settings)
    await tts.synthesize(SENTENCES[0], rate)
    cold_ms = (time.perf_counter() - t0) * 1000

    synth_ms, rtf, chars, audio_s = [], [], [], 0.0
    for i in range(count):
        text = SENTENCES[i % len(SENTENCES)]
        t = time.perf_counter()
        frame = await tts.synthesize(text, rate)
        dt = time.perf_counter() - t
        synth_ms.append(dt * 1000)
        rtf.append(1000 * dt / frame.duration)
        chars.append(len(text))
        audio_s += frame.duration

    whole_ms, first_ms = [], []
    for _ in range(20):
        t = time.perf_counter()
        whole = await tts.synthesize(LONG_REPLY, rate)
        whole_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        agen = tts.stream(LONG_REPLY, rate)
        await agen.__anext__()
        first_ms.append((time.perf_counter() - t) * 1000)
        await agen.aclose()

    hit_us = []
    await tts.synthesize(SENTENCES[1], rate, prompt_id="bench_cached")
    for _ in range(200):
        t = time.perf_counter()
        await tts.synthesize(SENTENCES[1], rate, prompt_id="bench_cached")
        hit_us.append((time.perf_counter() - t) * 1e6)

    rec_us = await _recorded_hits(settings, rate)

    per_call_ms: list[float] = []
    failures = 0

    async def worker(k: int) -> None:
        nonlocal failures
        for j in range(count // concurrency):
            t = time.perf_counter()
            frame = await tts.synthesize(SENTENCES[(k + j) % len(SENTENCES)], rate)
            per_call_ms.append((time.perf_counter() - t) * 1000)
            if frame.rms_dbfs() < -35:
                failures += 1

    t = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    wall = time.perf_counter() - t

    def row(name: str, values: list[float]) -> list[object]:
        p = percentiles(values)
        return [name, p["p50"], p["p90"], p["p99"], p["max"], p["n"]]

    rows = [
        row(f"synthesis per sentence, ms ({np.mean(chars):.0f} chars avg, {rate} Hz)", synth_ms),
        row("real-time factor x1000 (ms synthesis per s of audio)", rtf),
        row(f"whole reply, ms ({len(LONG_REPLY)} chars, {whole.duration:.1f} s audio)", whole_ms),
        row("first audio when streaming that reply, ms", first_ms),
        row("prompt-cache hit, µs (incl. executor hop)", hit_us),
        row("recorded-prompt hit, µs (incl. executor hop)", rec_us),
        row(f"synthesis per sentence with {concurrency} concurrent tasks, ms", per_call_ms),
    ]
    notes = [
        f"Cold start (load libespeak-ng + voice + first sentence): {cold_ms:.0f} ms.",
        f"{count} sequential syntheses: {sum(synth_ms) / 1000:.2f} s for {audio_s:.0f} s of audio.",
        f"{concurrency} asyncio tasks, {len(per_call_ms)} syntheses: {len(per_call_ms) / wall:.0f} sentences/s "
        f"(libespeak-ng is serialised by one lock; resampling runs in parallel), {failures} silent/failed.",
        f"Resident memory {rss0:.0f} MiB before, {_rss_mib():.0f} MiB after "
        f"{count + len(per_call_ms) + 40} syntheses.",
        f"Backend {tts.name}; output resampled from 22050 Hz with soxr.",
    ]
    return rows, notes


async def _recorded_hits(settings, rate: int) -> list[float]:
    from ivr.audio.files import write_wav
    from ivr.audio.frames import AudioFrame
    from ivr.tts import get_tts

    with tempfile.TemporaryDirectory(prefix="ivr-bench-") as tmp:
        t = np.arange(44100) / 44100
        write_wav(Path(tmp) / "bench_rec.wav", AudioFrame.from_numpy(0.3 * np.sin(2 * np.pi * 440 * t), 44100))
        tts = get_tts(settings.model_copy(update={"prompts_dir": Path(tmp)}))
        await tts.synthesize("录音", rate, prompt_id="bench_rec")
        out = []
        for _ in range(200):
            t0 = time.perf_counter()
            await tts.synthesize("录音", rate, prompt_id="bench_rec")
            out.append((time.perf_counter() - t0) * 1e6)
        return out


def _rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")
