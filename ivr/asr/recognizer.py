"""What an ASR stream and its engine share: the pooled recogniser, and the part of the engine a stream uses.

Kept apart from ``engine`` and ``stream`` so that neither imports the other's module for its types.
"""

from __future__ import annotations

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
    uses: int = 0  # utterances (or grammar streams) it has served
    idle_since: float = 0.0  # monotonic time it went back to the pool

    @property
    def fed_s(self) -> float:
        return self.fed_samples / self.rate


class RecognizerPool(Protocol):
    """The engine as its streams see it (:class:`ivr.asr.engine.AsrEngine` is the one implementation)."""

    sample_rate: int
    recognizer_rate: int
    _pool: DecodePool

    def _acquire_future(self) -> Future | Recognizer: ...

    def _give_back(self, r: Recognizer) -> None: ...

    def _release(self, r: Recognizer, dirty: bool) -> None: ...

    def _stream_closed(self) -> None: ...

    async def _run(self, fn: Callable[..., T], *args: object) -> T: ...
