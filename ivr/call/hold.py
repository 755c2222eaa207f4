"""Hold audio for callers waiting for an agent: a soft, slow chime loop made here (no music files to license).

A shop may replace it with its own recording: ``hold_audio(rate, path)`` reads any WAV/FLAC the service can read.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ivr.audio.frames import AudioFrame

_NOTES_HZ = (523.25, 659.25, 783.99, 659.25, 587.33, 698.46, 880.0, 698.46)  # C-E-G-E D-F-A-F
_NOTE_S = 0.5
_LEVEL = 0.12  # about -18 dBFS peak: audible, never loud


@lru_cache(maxsize=8)
def _chimes(rate: int) -> bytes:
    n = int(rate * _NOTE_S)
    t = np.arange(n) / rate
    env = np.exp(-t * 5.0) * np.minimum(1.0, t / 0.01)  # fast attack, bell-like decay
    notes = [np.sin(2 * np.pi * f * t) * 0.8 + np.sin(2 * np.pi * 2 * f * t) * 0.2 for f in _NOTES_HZ]
    loop = np.concatenate([x * env for x in notes] + [np.zeros(int(rate * 1.0))])
    return (loop * _LEVEL * 32767).astype(np.int16).tobytes()


def hold_audio(rate: int, path: Path | None = None) -> AudioFrame:
    """One loop of hold audio at ``rate`` (about 5 s): the built-in chimes, or the shop's file."""
    if path is not None:
        from ivr.audio.files import read_audio

        return read_audio(path, rate)
    return AudioFrame(_chimes(rate), rate)
