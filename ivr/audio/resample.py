"""Resampling with soxr (high quality, streaming state so chunk boundaries leave no clicks)."""

from __future__ import annotations

import numpy as np
import soxr

from ivr.audio.frames import AudioFrame


def resample(frame: AudioFrame, rate: int) -> AudioFrame:
    """Resample a whole frame (one-shot; for streams use :class:`Resampler`)."""
    if frame.sample_rate == rate:
        return frame
    y = soxr.resample(frame.to_numpy(), frame.sample_rate, rate, quality="HQ")
    return AudioFrame(np.asarray(y, dtype="<i2").tobytes(), rate, frame.pts)


class Resampler:
    """Streaming resampler for one direction of one call. Keeps filter state between chunks."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate, self.out_rate = in_rate, out_rate
        self._stream = None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality="HQ")
        self._out_samples = 0

    def process(self, frame: AudioFrame, last: bool = False) -> AudioFrame:
        """Resample the next chunk (``last`` flushes the filter's tail)."""
        if frame.sample_rate != self.in_rate:
            raise ValueError(f"resampler expects {self.in_rate} Hz, got {frame.sample_rate} Hz")
        if self._stream is None:
            return frame
        y = self._stream.resample_chunk(frame.to_numpy(), last=last)
        pts = self._out_samples / self.out_rate
        self._out_samples += len(y)
        return AudioFrame(np.asarray(y, dtype="<i2").tobytes(), self.out_rate, pts)
