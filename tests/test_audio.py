"""Audio basics: frames, resampling, G.711, file reading."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from ivr.audio import AudioFrame, Resampler, g711, resample
from ivr.audio.files import AudioFileError, read_audio, write_wav


def tone(freq: float, seconds: float, rate: int, amp: float = 0.5) -> AudioFrame:
    t = np.arange(int(seconds * rate)) / rate
    return AudioFrame.from_numpy(amp * np.sin(2 * np.pi * freq * t), rate)


def dominant_freq(frame: AudioFrame) -> float:
    x = frame.to_float()
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / frame.sample_rate)[np.argmax(spec)])


def test_frame_numpy_round_trip():
    f = tone(440, 0.1, 16000)
    assert f.samples == 1600 and abs(f.duration - 0.1) < 1e-9
    g = AudioFrame.from_numpy(f.to_numpy(), 16000)
    assert g.pcm == f.pcm
    with pytest.raises(ValueError):
        AudioFrame(b"\x00", 8000)


@pytest.mark.parametrize("src,dst", [(16000, 8000), (8000, 16000), (48000, 8000), (44100, 16000), (22050, 48000)])
def test_resample_keeps_frequency_and_level(src, dst):
    f = tone(440, 1.0, src)
    g = resample(f, dst)
    assert abs(g.samples - dst) <= 2
    assert abs(dominant_freq(g) - 440) < 3
    assert abs(g.rms_dbfs() - f.rms_dbfs()) < 0.5


def test_telephone_round_trip_keeps_tone():
    """16 kHz -> 8 kHz -> G.711 (both laws) -> 16 kHz keeps a tone's frequency and level."""
    f = tone(1000, 1.0, 16000, amp=0.3)
    narrow = resample(f, 8000)
    for law in ("PCMU", "PCMA"):
        payload = g711.encode(law, narrow)
        assert len(payload) == narrow.samples  # one byte per sample
        back = resample(g711.decode(law, payload), 16000)
        assert abs(dominant_freq(back) - 1000) < 3
        assert abs(back.rms_dbfs() - f.rms_dbfs()) < 0.5


def test_streaming_resampler_has_no_clicks_at_chunk_boundaries():
    """Chunked resampling equals one-shot resampling closely: no discontinuity every 20 ms."""
    f = tone(440, 1.0, 48000, amp=0.5)
    rs = Resampler(48000, 8000)
    chunks = []
    step = 48000 * 20 // 1000 * 2
    for i in range(0, len(f.pcm), step):
        chunks.append(rs.process(AudioFrame(f.pcm[i : i + step], 48000), last=i + step >= len(f.pcm)).to_numpy())
    y = np.concatenate(chunks).astype(np.float64) / 32768
    assert abs(len(y) - 8000) <= 2
    # A click is a sample-to-sample jump much larger than a 440 Hz sine at 8 kHz can make.
    max_step = 2 * np.pi * 440 / 8000 * 0.5
    body = y[200:-200]
    assert np.max(np.abs(np.diff(body))) < max_step * 1.2
    assert abs(dominant_freq(AudioFrame.from_numpy(body, 8000)) - 440) < 3


def test_g711_rejects_wrong_rate():
    with pytest.raises(ValueError, match="8000"):
        g711.encode("PCMU", tone(440, 0.02, 16000))


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT"])
def test_read_any_wav_width_stereo_rate(tmp_path, subtype):
    rate = 44100
    t = np.arange(rate // 2) / rate
    stereo = np.stack([0.4 * np.sin(2 * np.pi * 500 * t), 0.4 * np.sin(2 * np.pi * 500 * t)], axis=1)
    p = tmp_path / f"x_{subtype}.wav"
    sf.write(p, stereo, rate, subtype=subtype)
    f = read_audio(p, 16000)
    assert f.sample_rate == 16000 and abs(f.duration - 0.5) < 0.01
    assert abs(dominant_freq(f) - 500) < 4


def test_read_flac(tmp_path):
    p = tmp_path / "x.flac"
    sf.write(p, (0.3 * np.sin(2 * np.pi * 300 * np.arange(8000) / 8000)), 8000, format="FLAC")
    assert read_audio(p, 8000).samples == 8000


def test_read_audio_errors(tmp_path):
    with pytest.raises(AudioFileError, match="no such file"):
        read_audio(tmp_path / "missing.wav")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioFileError, match="empty"):
        read_audio(empty)
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio")
    with pytest.raises(AudioFileError, match="not a readable audio file"):
        read_audio(text)
    good = write_wav(tmp_path / "good.wav", tone(440, 0.5, 16000))
    trunc = tmp_path / "trunc.wav"
    trunc.write_bytes(good.read_bytes()[:30])
    with pytest.raises(AudioFileError):
        read_audio(trunc)
    low = tmp_path / "low.wav"
    sf.write(low, np.zeros(3000, dtype=np.int16), 3000)
    with pytest.raises(AudioFileError, match="3000 Hz"):
        read_audio(low)


def test_rate_converter_passes_matching_frames_and_streams_the_rest():
    from ivr.audio.resample import RateConverter

    to16 = RateConverter(16000)
    same = tone(440, 0.02, 16000)
    assert to16(same) is same  # nothing to do: the very frame comes back
    src = tone(440, 1.0, 8000)
    chunks = [AudioFrame(src.pcm[i:i + 320], 8000) for i in range(0, len(src.pcm), 320)]  # 20 ms at 8 kHz
    out = [to16(c) for c in chunks]
    assert all(f.sample_rate == 16000 for f in out)
    joined = AudioFrame(b"".join(f.pcm for f in out), 16000)
    assert 14000 < joined.samples <= 16000  # the streaming filter holds back under 0.1 s until the stream ends
    assert abs(dominant_freq(joined) - 440) < 5
    wide = to16(tone(440, 0.2, 48000))  # the far end changed its rate: a new resampler, not an error
    assert wide.sample_rate == 16000 and 0 < wide.samples <= 3200
