"""The call session with real parts: webrtcvad listener, espeak-ng TTS, the real dialogue over the seeded SQLite
demo shop, real records. The transport is the in-process LocalPort (its far end is this test, a caller)."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest
import soundfile as sf
from audio_gen import BACKCHANNELS, synth

from ivr.asr.vad import VadOptions
from ivr.call.local import LocalPort
from ivr.call.manager import CallManager, CallParts
from ivr.call.ports import CallInfo
from ivr.call.session import SessionOptions
from ivr.config import load_settings
from ivr.lang import get_pack
from ivr.replay.clock import ScaledEventLoop, now
from ivr.tts import get_tts
from ivr.wiring import build_parts

pytestmark = pytest.mark.timeout(180)
PACK = get_pack("zh-CN")


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> tuple:
    """Shop, TTS and record store built once; the NLU trains here, once per process, not in a test's first call."""
    settings = load_settings({"data_dir": str(tmp_path_factory.mktemp("calls")), "demo_data": True})
    base = build_parts(settings)
    base.dialog_factory(CallInfo("warmup", "replay"), asr_available=True).start()
    return settings, base


def _manager(parts, *, vad: VadOptions | None = None, max_calls: int = 8, tts_speed: int | None = None,
             clock=None, **opts) -> CallManager:
    settings, base = parts
    p: CallParts = dataclasses.replace(base, asr_engine=None, vad_options=vad)
    if tts_speed:
        p.tts = get_tts(settings.model_copy(update={"tts_speed": tts_speed}))
    options = SessionOptions(**{"no_input_timeout_s": 30.0, "max_call_s": 120.0, **opts})
    return CallManager(settings.model_copy(update={"max_calls": max_calls}), p, options=options,
                       **({"clock": clock} if clock else {}))


def _in_call_time(call, speed: float = 4.0):
    """Run ``call()`` on an event loop whose clock runs ``speed`` times faster (``ivr.replay.clock``): with the
    manager and the port on that clock, the session's timers and both 20 ms audio clocks run in call time, so a
    call that is mostly waiting (reprompt timers, a call limit) plays in a fraction of the wall-clock time with
    the same turn-taking. Only for tests of what happens when, not of how fast."""
    with asyncio.Runner(loop_factory=lambda: ScaledEventLoop(speed)) as r:
        return r.run(call())


def _tasks() -> set[asyncio.Task]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


async def _finish(manager: CallManager, port: LocalPort, task: asyncio.Task, baseline: set[asyncio.Task],
                  timeout: float = 30):
    record = await asyncio.wait_for(task, timeout)
    await port.close()
    await manager.shutdown(grace_s=1)
    await asyncio.sleep(0.05)
    leaked = [t.get_name() for t in _tasks() - baseline if not t.done()]
    assert leaked == [], f"tasks left running after the call: {leaked}"
    assert manager.sessions == {} and manager.active == 0
    return record


async def test_keypad_call_reaches_order_status_and_is_recorded(parts):
    baseline = _tasks()
    m = _manager(parts)
    port = LocalPort(channel="webrtc")
    port.start()
    task = m.start_call(port, m.reserve(port.info.call_id))  # no model here: DTMF mode, and the bot says so
    greeting = (await port.wait_bot(1, quiet=False))[0]
    assert PACK.prompt("greeting.dtmf") in greeting
    await asyncio.sleep(1.5)
    port.press("1")  # during the long keypad menu, as callers do: the key stops it
    assert "订单号" in (await port.wait_bot(2))[-1]
    for d in "100000000002#":
        port.press(d)
    assert "后四位" in (await port.wait_bot(3))[-1]
    for d in "8000":  # the order belongs to seeded demo customer 张伟, phone 13800138000
        port.press(d)
    answer = (await port.wait_bot(4, quiet=False))[-1]
    assert "核实通过" in answer and "签收" in answer, answer
    await asyncio.sleep(1.0)
    port.caller_hangup()
    rec = await _finish(m, port, task, baseline)

    assert rec.asr_mode == "dtmf" and rec.ended_by == "caller" and rec.outcome == "self_served"
    assert rec.turns[0].barged_in
    kinds = [(t.kind, t.caller_text) for t in rec.turns]
    assert kinds[:4] == [("start", ""), ("dtmf", "1"), ("dtmf", "100000000002#"), ("dtmf", "****")]  # tail masked
    for t in rec.turns[:4]:
        assert t.latency_ms is not None and t.latency_ms >= 0
        assert t.timing["first_audio_sent"] >= t.timing["dialog_decision"] >= 0
    stored = parts[1].store.get(rec.call_id)
    assert stored is not None and [t.caller_text for t in stored.turns][:4] == [k[1] for k in kinds[:4]]
    assert stored.turns[3].latency_ms == rec.turns[3].latency_ms
    # the bot's audio was continuous (a frame every 20 ms) and not silent while it talked
    assert port.voiced_spans(), "the caller heard nothing"


@pytest.mark.realtime  # barge-in latency: at most 200 ms of bot audio after the decision
async def test_barge_in_stops_the_bot_and_the_dialogue_learns_what_was_played(parts):
    baseline = _tasks()
    m = _manager(parts)
    port = LocalPort()
    port.start()
    task = m.start_call(port, m.reserve(port.info.call_id), asr_mode="reference")
    session = None
    while session is None:
        await asyncio.sleep(0.02)
        session = m.sessions.get(port.info.call_id)
    while not port.voiced_spans():
        await asyncio.sleep(0.02)
    await asyncio.sleep(1.0)  # the bot is mid-greeting
    port.reference("我想查一下我的订单")
    port.say(synth("我想查一下我的订单"))
    lines = await port.wait_bot(2)
    assert "订单号" in lines[-1]
    assert len(session.barge_ins) == 1
    decided, flushed = session.barge_ins[0]
    # Bot audio sent after the listener's barge-in decision: at most 10 frames (200 ms).
    after = [f for t, f in port.sent if t > decided and f.rms_dbfs() > -45 and t < decided + 1.0]
    assert len(after) <= 10, f"{len(after)} voiced frames after barge-in"
    d = session.dialog.dialog
    assert any(t.get("interrupted") for t in d.turns), "dialogue was not told the greeting was cut"
    port.caller_hangup()
    rec = await _finish(m, port, task, baseline)
    assert rec.turns[0].barged_in and rec.turns[1].caller_text == "我想查一下我的订单"
    assert rec.turns[1].input_source == "reference" and rec.turns[1].timing["speech_end"] == 0.0


@pytest.mark.realtime  # barge-in timing on live audio
async def test_backchannels_do_not_cut_the_bot_off(parts):
    baseline = _tasks()
    m = _manager(parts, vad=VadOptions(barge_in_min_ms=400))
    port = LocalPort()
    port.start()
    task = m.start_call(port, m.reserve(port.info.call_id), asr_mode="reference")
    while not port.voiced_spans():
        await asyncio.sleep(0.02)
    for text, speed in BACKCHANNELS[:2]:  # 嗯, 对: short, said over the bot, a moment apart
        await asyncio.sleep(0.5)
        port.say(synth(text, speed=speed))
        await port.finish_saying()
        await asyncio.sleep(0.8)
    await port.wait_bot(1)
    session = m.sessions[port.info.call_id]
    assert session.barge_ins == []
    assert len(port.bot_text()) == 1  # nothing was taken as a caller turn
    rec_turn = session.record.turns[0]
    assert not rec_turn.barged_in
    port.caller_hangup()
    rec = await _finish(m, port, task, baseline)
    assert [t.kind for t in rec.turns] == ["start"]


def test_silence_reprompts_then_hangs_up(parts):
    """Reprompts on silence, then goodbye: the no-input timers, played in call time (4x faster)."""

    async def call():
        baseline = _tasks()
        m = _manager(parts, no_input_timeout_s=0.8, tts_speed=420, clock=now)  # fast speech: four short prompts
        port = LocalPort(clock=now)
        port.start()
        task = m.start_call(port, m.reserve(port.info.call_id), asr_mode="reference")
        return port, await _finish(m, port, task, baseline, timeout=90)

    port, rec = _in_call_time(call)
    said = port.bot_text()
    assert PACK.prompt("no_input.1") in said[1]
    assert PACK.prompt("no_input.final") in said[-1]
    assert rec.ended_by == "bot" and port.hung_up and rec.outcome == "abandoned"
    assert [t.kind for t in rec.turns][1:] == ["no_input"] * (len(rec.turns) - 1)


def test_max_call_length_says_goodbye(parts):
    """A 1.5 s call limit cuts the greeting and the bot says goodbye, in call time (4x faster)."""

    async def call():
        baseline = _tasks()
        m = _manager(parts, max_call_s=1.5, clock=now)
        port = LocalPort(clock=now)
        port.start()
        task = m.start_call(port, m.reserve(port.info.call_id), asr_mode="reference")
        return port, await _finish(m, port, task, baseline)

    port, rec = _in_call_time(call)
    assert rec.end_reason == "max_duration" and port.hung_up
    assert port.voiced_spans()[-1][0] > port.voiced_spans()[0][1], "no goodbye after the cut greeting"


async def test_caller_hangs_up_while_bot_talks(parts):
    baseline = _tasks()
    m = _manager(parts)
    port = LocalPort()
    port.start()
    task = m.start_call(port, m.reserve(port.info.call_id))
    while not port.voiced_spans():
        await asyncio.sleep(0.02)
    port.caller_hangup()
    rec = await _finish(m, port, task, baseline)
    assert rec.ended_by == "caller" and rec.outcome == "abandoned" and port.hung_up is None


async def test_hang_up_before_media_frees_the_line_at_once(parts):
    """A WebRTC caller who hangs up (DELETE) before ICE connects: the line is free again right away, not after
    connect_timeout_s (20 s)."""
    baseline = _tasks()
    m = _manager(parts, max_calls=1, connect_timeout_s=20.0)

    class NeverConnects(LocalPort):
        async def ready(self) -> bool:
            await asyncio.Event().wait()
            return True

    port = NeverConnects(channel="webrtc")
    port.start()
    task = m.start_call(port, m.reserve(port.info.call_id))
    while port.info.call_id not in m.sessions:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    assert m.hangup(port.info.call_id)
    rec = await _finish(m, port, task, baseline, timeout=5)
    assert rec.ended_by == "caller" and rec.outcome == "abandoned"


@pytest.mark.live_light  # the recording's length is the call's handle time (within 1 s)
async def test_recording_is_stereo_caller_left_bot_right(parts, tmp_path):
    baseline = _tasks()
    m = _manager(parts, record_audio=True, recordings_dir=tmp_path / "rec")
    port = LocalPort()
    port.start()
    task = m.start_call(port, m.reserve(port.info.call_id), asr_mode="reference")
    while not port.voiced_spans():
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)
    speech = synth("我想查一下我的订单")
    port.reference("我想查一下我的订单")
    port.say(speech)
    await port.wait_bot(2)
    port.caller_hangup()
    rec = await _finish(m, port, task, baseline)
    data, rate = sf.read(rec.recording_path, dtype="int16")
    assert data.ndim == 2 and data.shape[1] == 2 and rate == 16000

    def level(x: np.ndarray) -> float:
        return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))

    first = data[: int(0.45 * rate)]  # the greeting's first 0.45 s: bot only
    assert level(first[:, 1]) > 100 > level(first[:, 0])
    assert level(data[:, 0]) > 100  # the caller's speech is on the left
    assert abs(len(data) / rate - rec.handle_time_s) < 1.0


@pytest.mark.realtime  # pacing: no gap over 60 ms
async def test_eight_concurrent_calls_keep_their_audio_paced(parts):
    baseline = _tasks()
    m = _manager(parts)
    await m.start()  # as `ivr serve` does: warm-up, then long-lived objects are frozen out of the GC's way
    ports = [LocalPort() for _ in range(8)]
    tasks = []
    for p in ports:
        p.start()
        tasks.append(m.start_call(p, m.reserve(p.info.call_id)))
    await asyncio.gather(*(p.wait_bot(1, quiet=False) for p in ports))
    await asyncio.sleep(2.0)
    for p in ports:
        p.press("1")  # a turn in the middle: dialogue + TTS while seven other calls are talking
    await asyncio.sleep(3.0)
    hangup_at = asyncio.get_running_loop().time()
    for p in ports:
        p.caller_hangup()
    await asyncio.gather(*(asyncio.wait_for(t, 30) for t in tasks))
    for p in ports:
        await p.close()
    await m.shutdown(grace_s=1)
    assert not [t for t in _tasks() - baseline if not t.done()]
    for p in ports:
        times = np.array([t for t, _ in p.sent if t < hangup_at])
        gaps = np.diff(times)
        assert len(times) > 200 and gaps.max() < 0.060, f"{p.info.call_id}: gap {gaps.max() * 1000:.0f} ms"
        voiced = [f for _, f in p.sent if f.rms_dbfs() > -45]
        assert len(voiced) > 100


async def test_capacity_refuses_politely_and_shutdown_says_goodbye(parts):
    baseline = _tasks()
    m = _manager(parts, max_calls=1)
    first = LocalPort()
    first.start()
    task = m.start_call(first, m.reserve(first.info.call_id), asr_mode="reference")
    await first.wait_bot(1, quiet=False)
    second = LocalPort()
    second.start()
    assert await m.run_call(second) is None  # refused: a short spoken apology, then hang-up
    assert second.hung_up == "busy" and any(f.rms_dbfs() > -45 for _, f in second.sent)
    await second.close()
    await m.shutdown(grace_s=15)
    rec = await asyncio.wait_for(task, 5)
    assert rec.end_reason == "shutdown" and first.hung_up
    spans = first.voiced_spans()
    assert len(spans) >= 2, "the active caller heard no goodbye"
    from ivr.call.manager import CallRefused

    with pytest.raises(CallRefused):
        m.reserve()
    await first.close()
    assert not [t for t in _tasks() - baseline if not t.done()]

