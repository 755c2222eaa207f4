"""What an ASR stream and its engine share: the pooled recogniser, and the part of the engine a stream uses.

Kept apart from ``engine`` and ``stream`` so that neither imports the other's module for its types.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol, TypeVar

from ivr.asr.workers import DecodePool

T = TypeVar("T")


@dataclass(eq=False)
class Recognizer:
    """A Vosk recogniser of the pool and what it has heard."""

    rec: object
    rate: int
    grammar: bool = False
    fed_samples: int = 0  # everything ever fed (Vosk's word times count from creation)
    uses: int = 0

    @property
    def fed_s(self) -> float:
        return self.fed_samples / self.rate


class RecognizerPool(Protocol):
    """The engine as its streams see it (:class:`ivr.asr.engine.AsrEngine` is the one implementation)."""

    sample_rate: int
    recognizer_rate: int
    recycle_speech_s: float
    _pool: DecodePool
    _lock: threading.Lock
    _in_use: int

    def _acquire_future(self) -> Future | Recognizer: ...

    def _release(self, r: Recognizer, dirty: bool) -> None: ...

    async def _run(self, fn: Callable[..., T], *args: object) -> T: ...
