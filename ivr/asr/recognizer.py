"""What an ASR stream and its engine share: the pooled recogniser, the part of the engine a stream uses, the
engine's statistics and its language-neutral warm-up signal.

Kept apart from ``engine`` and ``stream`` so that neither imports the other's module for its types.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import numpy as np

from ivr.asr.overload import OverloadGuard
from ivr.asr.workers import DecodePool
from ivr.audio.frames import AudioFrame

T = TypeVar("T")


@dataclass(eq=False)
class Recognizer:
    """A Vosk recogniser of the pool and what it has heard."""

    rec: object
    rate: int
    grammar: bool = False
    fed_samples: int = 0  # everything ever fed (Vosk's word times count from creation)
    uses: int = 0  # utterances (or grammar streams) it has served
    idle_since: float = 0.0  # monotonic time it went back to the pool

    @property
    def fed_s(self) -> float:
        return self.fed_samples / self.rate


class RecognizerPool(Protocol):
    """The engine as its streams see it (:class:`ivr.asr.engine.AsrEngine` is the one implementation)."""

    sample_rate: int
    recognizer_rate: int
    overload: OverloadGuard
    _pool: DecodePool

    def _acquire_future(self) -> Future | Recognizer: ...

    def _give_back(self, r: Recognizer) -> None: ...

    def _release(self, r: Recognizer, dirty: bool) -> None: ...

    def _stream_closed(self) -> None: ...

    async def _run(self, fn: Callable[..., T], *args: object) -> T: ...


@dataclass
class EngineStats:
    """What an engine's recogniser pool has done (``AsrEngine.stats()``)."""

    created: int = 0  # recognisers created (each warmed before use)
    recycled: int = 0  # destroyed after recycle_speech_s of audio
    reused: int = 0  # streams served by a recogniser that had served before
    cold_opens: int = 0  # streams that had to wait for a recogniser to be created
    idle: int = 0
    in_use: int = 0
    warm_s: list[float] = field(default_factory=list)  # creation + warm-up time per recogniser
    trimmed: int = 0  # idle spares destroyed after idle_trim_s without use
    decoding: int = 0  # recognisers held by utterances being decoded now
    alive: int = 0  # recognisers that exist (idle, decoding, grammar, being warmed)
    waited: int = 0  # utterances that waited for a recogniser to be handed back (``max_recognizers`` reached)


def synthetic_warmup_audio(rate: int) -> AudioFrame:
    """Language-neutral warm-up signal: silence, then 2 s of a voiced, syllable-modulated harmonic tone."""
    t = np.arange(int(rate * 2.0)) / rate
    f0 = 120 + 25 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 25))
    envelope = (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) ** 2
    voiced = 0.1 * harmonics * envelope / np.abs(harmonics).max()
    x = np.concatenate([np.zeros(rate // 2), voiced, np.zeros(rate // 2)])
    return AudioFrame.from_numpy(x, rate)
