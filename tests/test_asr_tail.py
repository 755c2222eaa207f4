"""The recogniser decodes only ``asr_tail_ms`` of a quiet stretch; the rest is held, fed only if the caller goes on.

At the endpoint only the recogniser's final is left to compute (nothing queued), and a caller who pauses longer than
the tail but shorter than the endpoint loses nothing: the held quiet and the new speech reach the recogniser in
order, as one utterance with the same text and word times as without the hold. Real Korean Vosk model on recorded
Korean speech from ../shared (NOT RUN without it), at 16 kHz where the model reads these clips almost error-free.
"""

from __future__ import annotations

import pytest
from audio_gen import chunks
from test_asr_early_final import RATE, _speech, _warm_engine

from ivr.asr.engine import AsrEngine
from ivr.asr.listener import Listener
from ivr.asr.metrics import cer
from ivr.asr.vad import VadOptions
from ivr.audio.frames import AudioFrame, concat_frames
from ivr.events import SpeechEnded, Transcript

pytestmark = [pytest.mark.shared, pytest.mark.slow]


async def _listen(engine: AsrEngine, audio: AudioFrame, tail_ms: int) -> tuple[list[Transcript], float, float]:
    """Finals, audio queued for the recogniser just before the endpoint's push, seconds of audio it was given."""
    listener = Listener(RATE, VadOptions(asr_tail_ms=tail_ms, early_final_ms=0, max_utterance_ms=30000), engine)
    finals, queued = [], -1.0
    for c in chunks(audio, 20):
        stream = listener._stream
        if stream is not None:  # as on a call, decoding keeps up between packets
            await stream._idle()
        backlog = stream.backlog_s if stream is not None else 0.0
        events = await listener.push(c, now=c.pts)
        if any(isinstance(e, SpeechEnded) for e in events):
            queued = backlog
        finals += [e for e in events if isinstance(e, Transcript) and e.final]
    fed = listener.audio_fed_s
    await listener.close()
    return finals, queued, fed


async def test_quiet_past_the_tail_is_held_and_a_caller_going_on_loses_nothing():
    """Sentence, 420 ms pause (past the 300 ms tail, short of the 500 ms endpoint), sentence, 1 s of quiet."""
    a, b, said = _speech()
    gap, lead, end = AudioFrame.silence(0.42, RATE), AudioFrame.silence(0.5, RATE), AudioFrame.silence(1.0, RATE)
    audio = concat_frames([lead, a, gap, b, end])
    engine = await _warm_engine()
    try:
        whole, whole_queued, whole_fed = await _listen(engine, audio, 0)
        tail, tail_queued, tail_fed = await _listen(engine, audio, 300)
    finally:
        await engine.close()
    assert len(whole) == len(tail) == 1, (whole, tail)
    (w,), (t,) = whole, tail
    speech_s = a.duration + gap.duration + b.duration
    # Fed: 300 ms of preroll, the speech with its pause, then without the hold the quiet up to the 500 ms endpoint,
    # with it 300 ms of the quiet.
    assert whole_fed >= speech_s + 0.3 + 0.45, whole_fed
    assert speech_s + 0.3 <= tail_fed <= speech_s + 0.3 + 0.3 + 0.06, (tail_fed, speech_s)
    assert tail_fed <= whole_fed - 0.15, (tail_fed, whole_fed)
    assert tail_queued == 0.0, tail_queued  # the endpoint found nothing to decode but the final
    assert cer(said, t.text) <= 0.15 and cer(said, w.text) <= 0.15, (said, w.text, t.text)
    b_from = lead.duration + a.duration + gap.duration  # the held pause was fed: b's words keep their call time
    assert any(x.start >= b_from - 0.1 for x in t.words), t.words
    assert abs(t.words[-1].end - w.words[-1].end) < 0.3 and abs(t.words[0].start - w.words[0].start) < 0.1
