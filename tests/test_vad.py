"""Segmenter acceptance on generated Mandarin speech (espeak-ng) with known silences, through real webrtcvad."""

from __future__ import annotations

import numpy as np
import pytest
from audio_gen import BACKCHANNELS, CALLER_LINES, chunks, scene, speech_extent, synth, telephone

from ivr.asr.vad import Segmenter, VadOptions
from ivr.audio.files import read_audio
from ivr.audio.frames import AudioFrame, concat_frames
from ivr.config import Settings
from ivr.events import BargeIn, SpeechEnded, SpeechStarted

TOLERANCE_S = 0.100
PARTS: list[str | float] = [0.8]
for _line, _gap in zip(CALLER_LINES, [1.0, 0.7, 1.5, 0.8, 1.2], strict=True):
    PARTS += [_line, _gap]


def run(seg: Segmenter, audio: AudioFrame, chunk_ms: float) -> list:
    events = []
    for c in chunks(audio, chunk_ms):
        events += seg.push(c, now=c.pts)
    return events + seg.flush(now=audio.duration)


@pytest.mark.parametrize("path", ["8k", "8k-g711", "16k", "44k1"])
@pytest.mark.parametrize("chunk_ms", [7, 20, 33])
def test_every_utterance_found_within_100ms(path, chunk_ms):
    rate = {"8k": 8000, "8k-g711": 16000, "16k": 16000, "44k1": 44100}[path]
    sc = scene(PARTS, rate)
    audio = telephone(sc.audio) if path == "8k-g711" else sc.audio
    events = run(Segmenter(audio.sample_rate), audio, chunk_ms)
    ends = [e for e in events if isinstance(e, SpeechEnded)]
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    assert len(ends) == len(starts) == len(sc.utterances), [(e.start_pts, e.end_pts) for e in ends]
    for e, truth in zip(ends, sc.utterances, strict=True):
        assert abs(e.start_pts - truth.start) <= TOLERANCE_S, (truth.text, e.start_pts, truth.start)
        assert abs(e.end_pts - truth.end) <= TOLERANCE_S, (truth.text, e.end_pts, truth.end)
        assert not e.truncated
    # events alternate started/ended and each SpeechStarted names the same start as its SpeechEnded
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["SpeechStarted", "SpeechEnded"] * len(sc.utterances)
    assert [s.pts for s in starts] == [e.start_pts for e in ends]


def test_endpoint_fires_after_trailing_silence_not_before():
    sc = scene([0.5, CALLER_LINES[0], 2.0], 16000)
    for trailing in (300, 500, 900):
        seg = Segmenter(16000, VadOptions(trailing_silence_ms=trailing))
        ended = [e for e in run(seg, sc.audio, 20) if isinstance(e, SpeechEnded)]
        assert len(ended) == 1
        # `at` is stamped with the pts of the chunk that completed the endpoint (see run())
        waited = ended[0].at - ended[0].end_pts
        assert trailing / 1000 - 0.05 <= waited <= trailing / 1000 + 0.1, (trailing, waited)


def test_utterance_audio_covers_speech_with_preroll():
    sc = scene([1.0, CALLER_LINES[1], 1.0], 8000)
    (ended,) = [e for e in run(Segmenter(8000), sc.audio, 20) if isinstance(e, SpeechEnded)]
    a = ended.audio
    assert a.sample_rate == 8000
    assert a.pts <= ended.start_pts - 0.29  # 300 ms pre-roll kept
    assert a.pts + a.duration >= ended.end_pts
    # the audio really is the utterance: it holds the loud part of the scene
    assert a.rms_dbfs() > sc.audio.rms_dbfs()


def test_short_pause_inside_utterance_does_not_split_it():
    sc = scene([0.5, CALLER_LINES[0], 0.05, CALLER_LINES[2], 1.0], 16000)
    pause = sc.utterances[1].start - sc.utterances[0].end
    assert 0.2 <= pause <= 0.4  # espeak's own trailing silence plus 50 ms: a breath, not an endpoint
    ends = [e for e in run(Segmenter(16000), sc.audio, 20) if isinstance(e, SpeechEnded)]
    assert len(ends) == 1
    assert abs(ends[0].start_pts - sc.utterances[0].start) <= TOLERANCE_S
    assert abs(ends[0].end_pts - sc.utterances[1].end) <= TOLERANCE_S


def test_max_utterance_length_truncates():
    long_speech = [0.3] + [CALLER_LINES[0], 0.1] * 4 + [1.0]
    sc = scene(long_speech, 16000)
    seg = Segmenter(16000, VadOptions(max_utterance_ms=3000))
    ends = [e for e in run(seg, sc.audio, 20) if isinstance(e, SpeechEnded)]
    assert ends[0].truncated
    assert ends[0].end_pts - ends[0].start_pts == pytest.approx(3.0, abs=0.03)
    assert all(e.end_pts - e.start_pts <= 3.0 + 1e-6 for e in ends)
    assert len(ends) >= 3  # speech went on: new utterances follow the cut


def test_backchannels_and_bursts_do_not_barge_in_but_speech_does():
    parts: list[str | float] = [0.6]
    for b in BACKCHANNELS:
        parts += [b, 0.9]
    parts += [CALLER_LINES[0], 1.0]
    sc = scene(parts, 8000)
    assert all(u.end - u.start < 0.27 for u in sc.utterances[:-1])  # shorter than barge_in_min_ms (300)
    seg = Segmenter(8000)
    seg.bot_speaking = True
    events = run(seg, sc.audio, 20)
    barge = [e for e in events if isinstance(e, BargeIn)]
    assert len(barge) == 1, [(e.pts, e.speech_ms) for e in barge]
    real = sc.utterances[-1]
    assert abs(barge[0].pts - real.start) <= TOLERANCE_S
    assert barge[0].speech_ms >= 300
    # it fires while the caller is still talking, well before the utterance ends
    assert barge[0].at < real.end


@pytest.mark.parametrize("noise_dbfs", [-60.0, -45.0, -35.0])
def test_barge_in_is_decided_when_barge_in_min_ms_is_spoken_not_a_hangover_later(noise_dbfs):
    """webrtcvad flags ~100 ms of hang-over frames as voiced after speech stops; barge-in counts only frames
    clearly above the line's background, so it need not wait the hang-over out to tell speech from a backchannel.
    Over a line of barely any noise the decision comes within 70 ms of barge_in_min_ms (300) of speech (it came
    90-110 ms later when it waited for the hang-over); over noisier lines backchannels still never barge in."""
    parts: list[str | float] = [0.6]
    for b in BACKCHANNELS:
        parts += [b, 0.9]
    for line in CALLER_LINES:
        parts += [line, 1.0]
    sc = scene(parts, 8000, noise_dbfs=noise_dbfs)
    real = sc.utterances[len(BACKCHANNELS):]
    for audio in (sc.audio, telephone(sc.audio)):
        seg = Segmenter(audio.sample_rate)
        seg.bot_speaking = True
        events = []
        for c in chunks(audio, 20):
            events += seg.push(c, now=c.pts + c.duration)  # stamped when the chunk has arrived
        barge = [e for e in events if isinstance(e, BargeIn)]
        assert len(barge) == len(real), [(round(e.pts, 2), e.speech_ms) for e in barge]  # no backchannel barged in
        for e, u in zip(barge, real, strict=True):
            assert abs(e.pts - u.start) <= TOLERANCE_S and e.speech_ms >= 300
            took = e.at - u.start
            assert took >= 0.300 - 0.030, (u.text, took)  # not before the caller has said barge_in_min_ms
            assert e.at < u.end, (u.text, took)  # while the caller is still talking
            if noise_dbfs <= -60:
                assert took <= 0.300 + 0.070, (u.text, took)


def test_no_barge_in_while_bot_is_silent():
    sc = scene([0.5, CALLER_LINES[0], 1.0], 16000)
    events = run(Segmenter(16000), sc.audio, 20)
    assert not [e for e in events if isinstance(e, BargeIn)]
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]


def test_noise_and_silence_give_no_events():
    import numpy as np

    rng = np.random.default_rng(1)
    hum = AudioFrame.from_numpy(0.002 * rng.standard_normal(16000 * 3), 16000)
    click = AudioFrame.from_numpy(np.r_[np.zeros(8000), 0.8 * rng.standard_normal(400), np.zeros(8000)], 16000)
    for audio in (AudioFrame.silence(3.0, 16000), hum, click):
        seg = Segmenter(16000)
        seg.bot_speaking = True
        assert run(seg, audio, 20) == []


def test_flush_closes_open_utterance_and_reset_forgets():
    clip = synth(CALLER_LINES[0], 16000)
    seg = Segmenter(16000)
    events = []
    for c in chunks(AudioFrame(bytes(8000) + clip.pcm[: len(clip.pcm) // 2], 16000), 20):
        events += seg.push(c)
    assert [type(e) for e in events] == [SpeechStarted]
    assert seg.in_speech
    (ended,) = seg.flush()
    assert isinstance(ended, SpeechEnded) and ended.end_pts > ended.start_pts
    assert seg.flush() == []
    seg.push(AudioFrame(clip.pcm[:16000], 16000))
    seg.reset()
    assert not seg.in_speech and seg.flush() == []


def test_options_from_settings_and_validation():
    s = Settings(vad_aggressiveness=3, vad_min_speech_ms=150, vad_trailing_silence_ms=700, barge_in_min_ms=400)
    o = VadOptions.from_settings(s)
    assert (o.aggressiveness, o.min_speech_ms, o.trailing_silence_ms, o.barge_in_min_ms) == (3, 150, 700, 400)
    with pytest.raises(ValueError):
        VadOptions(frame_ms=25)
    with pytest.raises(ValueError):
        Segmenter(16000).push(AudioFrame(bytes(320), 8000))


def _faint_tail_call(rate: int, rms: float, tail_s: float = 0.6) -> tuple[AudioFrame, float]:
    """A line, then ``tail_s`` of its own last speech scaled to ``rms`` (a recording's faint tail), then digital
    zeros (a browser with noise suppression); returns the audio and where the loud speech ends."""
    line = synth(CALLER_LINES[0], rate)
    _s, e = speech_extent(line)
    x = line.to_numpy().astype(np.float64)[: int(e * rate)]
    src = x[int((e - tail_s) * rate):]
    tail = src / np.sqrt(np.mean(src**2)) * rms
    sig = np.concatenate([np.zeros(rate // 2), x, tail, np.zeros(int(1.5 * rate))])
    return AudioFrame(sig.astype("<i2").tobytes(), rate), 0.5 + e


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("rms", [20.0, 50.0, 80.0])
def test_faint_tail_after_the_last_word_is_not_speech_on_a_digitally_silent_line(rate, rms):
    """Between words the caller's side sends zeros, so the line's background says nothing; a faint tail (RMS 20-80)
    must not hold the endpoint back (it did by the tail's length: +0.4-0.6 s)."""
    audio, loud_end = _faint_tail_call(rate, rms)
    (ended,) = [e for e in run(Segmenter(rate), audio, 20) if isinstance(e, SpeechEnded)]
    assert abs(ended.end_pts - loud_end) <= TOLERANCE_S, (ended.end_pts, loud_end)
    assert ended.at - loud_end <= 0.5 + TOLERANCE_S, (ended.at, loud_end)  # trailing silence after the loud end


@pytest.mark.shared
@pytest.mark.parametrize("name", ["my_record_test02", "my_record_test05"])
def test_recorded_speech_with_a_faint_tail_ends_at_the_last_word(name):
    """Recorded Korean clips (../shared) end in 0.6 s of RMS 65-81 tail; over digital silence the utterance ends
    at the last word, not after the tail."""
    from tests.conftest import shared_path

    (path,) = shared_path("speech", "ko").glob(f"*{name}.wav")
    clip = read_audio(path, 8000)
    _s, loud_end = speech_extent(clip, -45.0)
    tail = clip.to_numpy().astype(np.float64)[int(loud_end * 8000):]
    assert 20 <= np.sqrt(np.mean(tail**2)) <= 100 and len(tail) >= 0.4 * 8000  # the clip has such a tail
    audio = concat_frames([AudioFrame.silence(0.5, 8000), clip, AudioFrame.silence(1.5, 8000)])
    ends = [e for e in run(Segmenter(8000), audio, 20) if isinstance(e, SpeechEnded)]
    assert len(ends) == 1
    assert ends[0].end_pts <= 0.5 + loud_end + TOLERANCE_S, (ends[0].end_pts, 0.5 + loud_end)
    assert ends[0].at <= 0.5 + loud_end + 0.5 + TOLERANCE_S
