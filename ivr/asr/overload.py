"""Whether speech recognition has fallen behind the callers who are talking now.

A stream's backlog is caller audio queued for its recogniser and not yet decoded. On a machine that keeps up it
stays within a batch or two (160-320 ms); when the decoding threads cannot keep up (more talkers than the cores
decode, or the CPU taken by something else) every stream's backlog grows until its back-pressure limit (4 s) holds
the call's inbound audio and utterances are lost (measured: 16 callers beside three busy loops lost 61 of 84).

The guard remembers when each stream's backlog last passed ``backlog_s``; while at least two streams did within
the last ``hold_s`` (one lagging stream alone can be a starved moment, not a full machine) the engine counts as
overloaded and the call layer starts *new* calls in keypad (DTMF) mode ("语音识别暂时不可用，请您按键
选择" in zh-CN): they are served by the keypad menu, and they add no decoding to the calls already in progress,
which keep their recognition. ``backlog_s`` 0 turns the guard off (setting ``asr_overload_backlog_s``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

DEFAULT_BACKLOG_S = 3.0  # well above a keeping-up stream's 160-320 ms, under the 4 s back-pressure limit
DEFAULT_HOLD_S = 10.0  # how long one sighting keeps new calls on the keypad


class OverloadGuard:
    """Tracks decoding backlog sightings per stream; :attr:`overloaded` while ``min_streams`` different streams
    were behind within the last ``hold_s`` (one lagging stream alone is not the machine being full)."""

    def __init__(self, backlog_s: float = DEFAULT_BACKLOG_S, hold_s: float = DEFAULT_HOLD_S, min_streams: int = 2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if backlog_s < 0 or hold_s < 0 or min_streams < 1:
            raise ValueError("backlog_s and hold_s must be >= 0, min_streams >= 1")
        self.backlog_s = backlog_s
        self.hold_s = hold_s
        self.min_streams = min_streams
        self.clock = clock
        self.episodes = 0  # times the engine went from keeping up to overloaded
        self.worst_s = 0.0  # the largest backlog seen
        self._seen: dict[int, float] = {}  # stream key -> when it was last behind

    def note(self, stream: int, backlog_s: float) -> None:
        """Stream ``stream``'s backlog now (called as audio is queued: one comparison when below the threshold)."""
        if self.backlog_s <= 0 or backlog_s <= self.backlog_s:
            return
        was = self.overloaded
        now = self.clock()
        self._seen = {k: t for k, t in self._seen.items() if now - t < self.hold_s}
        self._seen[stream] = now
        self.worst_s = max(self.worst_s, backlog_s)
        self.episodes += not was and self.overloaded

    @property
    def overloaded(self) -> bool:
        now = self.clock()
        return sum(1 for t in self._seen.values() if now - t < self.hold_s) >= self.min_streams
