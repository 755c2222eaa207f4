"""Resampling: one-shot with soxr HQ; streams by an integer factor with a polyphase FIR (``ivr.audio.polyphase``:
exact 20 ms out per 20 ms in, a few ms of delay), other streams with soxr's streaming mode (it holds ~100 ms)."""

from __future__ import annotations

import numpy as np
import soxr

from ivr.audio.frames import AudioFrame
from ivr.audio.polyphase import PolyphaseResampler, integer_factor


def resample(frame: AudioFrame, rate: int) -> AudioFrame:
    """Resample a whole frame (one-shot; for streams use :class:`Resampler`)."""
    if frame.sample_rate == rate:
        return frame
    y = soxr.resample(frame.to_numpy(), frame.sample_rate, rate, quality="HQ")
    return AudioFrame(np.asarray(y, dtype="<i2").tobytes(), rate, frame.pts)


class Resampler:
    """Streaming resampler for one direction of one call. Keeps filter state between chunks.

    Integer ratios (8 <-> 16 <-> 48 kHz) use the polyphase FIR: every chunk gives its exact share of output at
    once, ``delay_s`` late (output sample n is input time n / out_rate - delay_s), and ``last`` adds nothing.
    Other ratios use soxr HQ, delay-compensated but releasing output in blocks; ``last`` flushes its tail."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate, self.out_rate = in_rate, out_rate
        self._fir = PolyphaseResampler(in_rate, out_rate) if integer_factor(in_rate, out_rate) else None
        self._stream = None if in_rate == out_rate or self._fir is not None else \
            soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality="HQ")
        self.delay_s = self._fir.delay_s if self._fir is not None else 0.0
        self._out_samples = 0

    def process(self, frame: AudioFrame, last: bool = False) -> AudioFrame:
        """Resample the next chunk (``last`` flushes the filter's tail)."""
        if frame.sample_rate != self.in_rate:
            raise ValueError(f"resampler expects {self.in_rate} Hz, got {frame.sample_rate} Hz")
        if self._fir is not None:
            y = self._fir.process(frame.to_numpy())
        elif self._stream is None:
            return frame
        else:
            y = self._stream.resample_chunk(frame.to_numpy(), last=last)
        pts = self._out_samples / self.out_rate
        self._out_samples += len(y)
        return AudioFrame(np.asarray(y, dtype="<i2").tobytes(), self.out_rate, pts)


class RateConverter:
    """One direction of one stream to a fixed rate, whatever rate arrives: frames already at ``out_rate`` pass
    through untouched, others go through a streaming :class:`Resampler` (made anew if the input rate changes)."""

    def __init__(self, out_rate: int) -> None:
        self.out_rate = out_rate
        self._rs: Resampler | None = None

    def __call__(self, frame: AudioFrame) -> AudioFrame:
        if frame.sample_rate == self.out_rate:
            return frame
        if self._rs is None or self._rs.in_rate != frame.sample_rate:
            self._rs = Resampler(frame.sample_rate, self.out_rate)
        return self._rs.process(frame)
