"""The one PCM frame type of the pipeline: signed 16-bit little-endian mono, explicit sample rate."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

SUPPORTED_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """A chunk of s16 mono PCM. ``pcm`` holds little-endian 16-bit samples; ``pts`` is seconds since stream start."""

    pcm: bytes
    sample_rate: int
    pts: float = 0.0
    meta: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"sample rate must be positive, got {self.sample_rate}")
        if len(self.pcm) % 2:
            raise ValueError("s16 PCM must have an even number of bytes")

    @property
    def samples(self) -> int:
        return len(self.pcm) // 2

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.samples / self.sample_rate

    def to_numpy(self) -> np.ndarray:
        """Samples as int16 (a read-only view)."""
        return np.frombuffer(self.pcm, dtype="<i2")

    def to_float(self) -> np.ndarray:
        """Samples as float32 in [-1, 1)."""
        return self.to_numpy().astype(np.float32) / 32768.0

    @classmethod
    def from_numpy(cls, samples: np.ndarray, sample_rate: int, pts: float = 0.0) -> AudioFrame:
        """From int16 or float (clipped to [-1, 1]) samples; 2-D input is mixed down to mono."""
        a = np.asarray(samples)
        if a.ndim == 2:
            a = a.mean(axis=1) if a.dtype.kind == "f" else a.astype(np.float64).mean(axis=1).astype(np.int16)
        if a.dtype.kind == "f":
            a = (np.clip(a, -1.0, 32767 / 32768) * 32768.0).round().astype("<i2")
        else:
            a = a.astype("<i2")
        return cls(a.tobytes(), sample_rate, pts)

    @classmethod
    def silence(cls, seconds: float, sample_rate: int, pts: float = 0.0) -> AudioFrame:
        return cls(bytes(2 * int(round(seconds * sample_rate))), sample_rate, pts)

    def rms_dbfs(self) -> float:
        """Level in dBFS (-inf for digital silence)."""
        if not self.pcm:
            return float("-inf")
        # one conversion and a dot product: called for every 20 ms frame of every call (the call trace, the replay
        # caller), where five numpy temporaries per frame cost ~3x as much
        x = np.frombuffer(self.pcm, dtype="<i2").astype(np.float64)
        rms = math.sqrt(float(x @ x) / len(x)) / 32768.0
        return 20 * np.log10(rms) if rms > 0 else float("-inf")


def concat_frames(frames: list[AudioFrame]) -> AudioFrame:
    """Join frames of one rate into one frame (pts of the first)."""
    if not frames:
        raise ValueError("no frames to join")
    rate = frames[0].sample_rate
    if any(f.sample_rate != rate for f in frames):
        raise ValueError("cannot join frames of different sample rates")
    return AudioFrame(b"".join(f.pcm for f in frames), rate, frames[0].pts)


def frames_of(frame: AudioFrame, ms: int = 20, pad: bool = True) -> Iterator[AudioFrame]:
    """Split into consecutive ``ms`` frames; the last is zero-padded when ``pad`` (else dropped if short)."""
    n = frame.sample_rate * ms // 1000 * 2
    for i in range(0, len(frame.pcm), n):
        chunk = frame.pcm[i : i + n]
        if len(chunk) < n:
            if not pad:
                return
            chunk = chunk + bytes(n - len(chunk))
        yield AudioFrame(chunk, frame.sample_rate, frame.pts + i / 2 / frame.sample_rate)
