"""Reading any WAV/FLAC a tester hands us into pipeline format, and writing WAVs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from ivr.audio.frames import AudioFrame
from ivr.audio.resample import resample

MIN_RATE = 8000
MAX_CHANNELS = 8


class AudioFileError(Exception):
    """The file cannot be used as audio; the message says why in one line."""


def read_audio(path: str | Path, rate: int | None = 16000, *, max_seconds: float | None = None) -> AudioFrame:
    """Read WAV/FLAC/OGG (any rate, 1..8 channels, 8/16/24/32-bit int or float) as s16 mono at ``rate``.

    ``rate=None`` keeps the file's own rate. Raises :class:`AudioFileError` for missing, unreadable, empty,
    truncated or unsupported files (rates below 8 kHz cannot carry speech for the recogniser).
    """
    p = Path(path)
    if not p.exists():
        raise AudioFileError(f"{p}: no such file")
    if p.is_dir():
        raise AudioFileError(f"{p}: is a directory, not an audio file")
    if p.stat().st_size == 0:
        raise AudioFileError(f"{p}: file is empty")
    try:
        info = sf.info(str(p))
    except Exception as e:  # soundfile raises LibsndfileError/RuntimeError with libsndfile's text
        raise AudioFileError(f"{p}: not a readable audio file ({_short(e)})") from None
    if info.samplerate < MIN_RATE:
        raise AudioFileError(f"{p}: sample rate {info.samplerate} Hz is below {MIN_RATE} Hz, too low for speech")
    if info.channels < 1 or info.channels > MAX_CHANNELS:
        raise AudioFileError(f"{p}: {info.channels} channels not supported (1..{MAX_CHANNELS})")
    if info.frames <= 0:
        raise AudioFileError(f"{p}: contains no audio samples")
    try:
        frames = None if max_seconds is None else int(max_seconds * info.samplerate)
        data, sr = sf.read(str(p), dtype="float32", always_2d=True, frames=frames if frames else -1)
    except Exception as e:
        raise AudioFileError(f"{p}: audio data is damaged or truncated ({_short(e)})") from None
    if data.shape[0] == 0:
        raise AudioFileError(f"{p}: contains no audio samples")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    frame = AudioFrame.from_numpy(mono, sr)
    return frame if rate is None or rate == sr else resample(frame, rate)


def write_wav(path: str | Path, frame: AudioFrame | np.ndarray, rate: int | None = None) -> Path:
    """Write s16 PCM WAV. ``frame`` may be an AudioFrame or an int16 array (then ``rate`` is required;
    a 2-D array of shape (n, 2) writes stereo)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(frame, AudioFrame):
        sf.write(str(p), frame.to_numpy(), frame.sample_rate, subtype="PCM_16")
    else:
        if rate is None:
            raise ValueError("rate is required when writing an array")
        sf.write(str(p), np.asarray(frame, dtype=np.int16), rate, subtype="PCM_16")
    return p


def _short(e: Exception) -> str:
    return str(e).strip().splitlines()[-1][:160] if str(e).strip() else type(e).__name__
