"""Trimming the quiet lead-in of synthesised speech (espeak-ng starts a reply with ~40 ms of near silence).

The caller waits through every millisecond of it before hearing the bot, so a reply starts :data:`KEEP_MS`
before its first audible moment (a 5 ms window above :data:`AUDIBLE_DBFS`): words are not clipped, the wait is.
"""

from __future__ import annotations

import numpy as np

from ivr.audio.frames import AudioFrame

AUDIBLE_DBFS = -50.0  # a 5 ms window this loud is sound; TTS lead-in silence is far below it
KEEP_MS = 5  # kept before the first audible window (the onset's quiet start)
WINDOW_MS = 5
MAX_TRIM_S = 1.0  # a reply quiet for longer than this is passed on as it is (a deliberate pause, a quiet prompt)


def audible_start(x: np.ndarray, rate: int) -> int | None:
    """Index of the first sample of the first audible window in ``x`` (int16), or None."""
    w = max(1, rate * WINDOW_MS // 1000)
    n = len(x) // w
    if n == 0:
        return None
    power = np.mean(x[: n * w].astype(np.float64).reshape(n, w) ** 2, axis=1)
    loud = np.flatnonzero(power > (32768.0 * 10 ** (AUDIBLE_DBFS / 20)) ** 2)
    return int(loud[0]) * w if len(loud) else None


class LeadTrimmer:
    """Drops a stream's leading quiet, chunk by chunk, keeping :data:`KEEP_MS` before the first audible window;
    everything from there on passes untouched (``done``)."""

    def __init__(self) -> None:
        self.done = False
        self.trimmed_s = 0.0
        self._held = np.zeros(0, dtype=np.int16)

    def __call__(self, audio: AudioFrame) -> AudioFrame:
        if self.done:
            return audio
        x = np.concatenate([self._held, audio.to_numpy()])
        rate = audio.sample_rate
        start = audible_start(x, rate)
        keep = rate * KEEP_MS // 1000
        if start is None:
            if len(x) / rate + self.trimmed_s > MAX_TRIM_S:  # quiet throughout: give up trimming
                self.done = True
                return AudioFrame(x.tobytes(), rate, audio.pts)
            w = max(1, rate * WINDOW_MS // 1000)
            cut = max(0, len(x) // w * w - keep)  # hold the unjudged tail and a few ms: maybe the onset's start
            self.trimmed_s += cut / rate
            self._held = x[cut:]
            return AudioFrame(b"", rate, audio.pts)
        cut = max(0, start - keep)
        self.trimmed_s += cut / rate
        self.done = True
        self._held = np.zeros(0, dtype=np.int16)
        return AudioFrame(x[cut:].tobytes(), rate, audio.pts)
