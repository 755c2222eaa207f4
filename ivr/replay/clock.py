"""Faster-than-real-time replay: an asyncio event loop whose clock runs ``speed`` times faster.

Everything in a direct replay that waits (the caller's 20 ms microphone frames, the session's paced playout, its
no-input timers, ``asyncio.sleep``) is scheduled on the loop clock, so scaling ``loop.time()`` and the selector's
timeouts plays a whole call ``speed`` times faster with identical turn-taking. Work done in threads (TTS,
dialogue) still takes real time, so at ``speed`` > 1 processing latencies appear ``speed`` times longer in call
time: use speed 1 (the default) for any latency figure.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Callable


class _ScaledSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    def __init__(self, speed: float) -> None:
        super().__init__()
        self._speed = speed

    def select(self, timeout: float | None = None):
        return super().select(None if timeout is None else max(0.0, timeout) / self._speed)


class ScaledEventLoop(asyncio.SelectorEventLoop):
    """A selector loop whose ``time()`` advances ``speed`` times faster than the monotonic clock."""

    def __init__(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        super().__init__(_ScaledSelector(speed))
        self.speed = speed
        self._real0 = time.monotonic()

    def time(self) -> float:
        return self._real0 + (time.monotonic() - self._real0) * self.speed


def loop_factory(speed: float) -> Callable[[], asyncio.AbstractEventLoop]:
    """For ``asyncio.Runner(loop_factory=...)``: a plain loop at speed 1, else a scaled one."""
    if speed == 1:
        return asyncio.new_event_loop
    return lambda: ScaledEventLoop(speed)


def now() -> float:
    """The running loop's clock (call time)."""
    return asyncio.get_running_loop().time()
