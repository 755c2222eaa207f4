"""Paced, flushable playout of the bot's audio: one 20 ms frame per tick, silence when idle.

One clock per call: frame *k* is due at ``t0 + k * 20 ms`` (monotonic), so scheduling jitter never
accumulates into drift. After a stall longer than ``resync_s`` (a blocked loop, a slow transport) the
schedule is re-anchored instead of bursting the backlog. The stream is continuous, like a phone line: the
recorder and the transports see one frame every 20 ms whether the bot talks or not. A bot reply (``reply_id`` > 0)
queued while the line is idle does not wait for the next tick: its first frame goes at once and the clock re-anchors on it (up to
20 ms sooner to the caller; the frames stay 20 ms apart from there).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ivr.audio.frames import AudioFrame


@dataclass(frozen=True, slots=True)
class Tag:
    """Which reply/segment a queued frame belongs to (for barge-in accounting and latency stamps)."""

    reply_id: int
    segment: int
    index: int  # frame number within the segment


@dataclass(frozen=True, slots=True)
class Played:
    """What had reached the caller when playout was flushed."""

    reply_id: int | None
    segments_played: int  # complete segments of that reply
    fraction_of_last: float  # 0..1 of the segment that was cut
    dropped_frames: int


class Playout:
    """Sends 20 ms frames to ``send`` in real time; :meth:`flush` drops everything queued (barge-in)."""

    def __init__(
        self,
        send: Callable[[AudioFrame], Awaitable[None]],
        sample_rate: int,
        frame_ms: int = 20,
        *,
        on_sent: Callable[[AudioFrame, Tag | None, float], None] | None = None,
        on_send: Callable[[AudioFrame, Tag | None], None] | None = None,
        resync_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self.rate = sample_rate
        self.frame_ms = frame_ms
        self.frame_bytes = sample_rate * frame_ms // 1000 * 2
        self._silence = bytes(self.frame_bytes)
        self._queue: collections.deque[tuple[bytes, Tag | None]] = collections.deque()
        self._pending = b""  # bytes not yet filling a whole frame
        self._pending_tag: Tag | None = None
        self._on_sent = on_sent
        self._on_send = on_send  # sees each frame just before it goes to ``send`` (to mark it in ``meta``)
        self._resync_s = resync_s
        self._clock = clock
        self._idle = asyncio.Event()
        self._idle.set()
        self._segment_frames: dict[tuple[int, int], int] = {}  # (reply, segment) -> frames queued so far
        self._last_tag: Tag | None = None
        self._tick: asyncio.Future[bool] | None = None  # the clock's wait for the next tick (True: woken early)
        self.frames_sent = 0
        self.stalls = 0
        self.closed = False

    # --- producer side --------------------------------------------------------------------------------
    def enqueue(self, audio: AudioFrame, reply_id: int = 0, segment: int = 0) -> int:
        """Queue audio (any length, at ``sample_rate``); returns how many whole frames were queued."""
        if audio.sample_rate != self.rate:
            raise ValueError(f"playout runs at {self.rate} Hz, got {audio.sample_rate} Hz")
        data = self._pending + audio.pcm
        n_whole = len(data) // self.frame_bytes
        key = (reply_id, segment)
        start = self._segment_frames.get(key, 0)
        for i in range(n_whole):
            chunk = data[i * self.frame_bytes : (i + 1) * self.frame_bytes]
            self._queue.append((chunk, Tag(reply_id, segment, start + i)))
        self._segment_frames[key] = start + n_whole
        self._pending = data[n_whole * self.frame_bytes :]
        self._pending_tag = Tag(reply_id, segment, start + n_whole) if self._pending else None
        if self._queue:
            # A bot reply's first audio on an idle line goes at once; streamed audio (bridged agent, whisper:
            # reply_id <= 0) keeps the clock's pace.
            if reply_id > 0 and start == 0 and self._idle.is_set() and self._tick is not None \
                    and not self._tick.done():
                self._tick.set_result(True)
            self._idle.clear()
        return n_whole

    def end_of_audio(self) -> None:
        """Pad and queue the last partial frame (call after the last segment of a reply)."""
        if self._pending and self._pending_tag is not None:
            t = self._pending_tag
            self._queue.append((self._pending + bytes(self.frame_bytes - len(self._pending)), t))
            self._segment_frames[(t.reply_id, t.segment)] = t.index + 1
            self._idle.clear()
        self._pending, self._pending_tag = b"", None

    def flush(self) -> Played:
        """Drop all queued audio now; report how much of the current reply the caller heard."""
        dropped = len(self._queue)
        self._queue.clear()
        self._pending, self._pending_tag = b"", None
        self._idle.set()
        last = self._last_tag
        if last is None:
            return Played(None, 0, 0.0, dropped)
        total = self._segment_frames.get((last.reply_id, last.segment), last.index + 1)
        frac = min(1.0, (last.index + 1) / max(1, total))
        if frac >= 1.0:
            return Played(last.reply_id, last.segment + 1, 0.0, dropped)
        return Played(last.reply_id, last.segment, frac, dropped)

    @property
    def busy(self) -> bool:
        """True while bot audio is queued (the bot is talking)."""
        return bool(self._queue)

    @property
    def queued_seconds(self) -> float:
        return len(self._queue) * self.frame_ms / 1000

    async def wait_idle(self) -> None:
        """Return once everything queued has been sent (or flushed)."""
        await self._idle.wait()

    # --- the clock --------------------------------------------------------------------------------------
    async def _sleep(self, delay: float) -> bool:
        """Wait ``delay`` seconds, or less when :meth:`enqueue` wakes the clock; True if woken."""
        loop = asyncio.get_running_loop()
        tick = self._tick = loop.create_future()
        timer = loop.call_later(delay, lambda: tick.done() or tick.set_result(False))
        try:
            return await tick
        finally:
            timer.cancel()
            self._tick = None

    async def run(self) -> None:
        """Send one frame per tick until cancelled."""
        period = self.frame_ms / 1000
        t0 = self._clock()
        k = 0
        pts0 = 0.0
        while not self.closed:
            due = t0 + k * period
            delay = due - self._clock()
            if delay > 0:
                if await self._sleep(delay):
                    t0 = self._clock() - k * period  # woken for a reply: this tick is now
            elif -delay > self._resync_s:
                self.stalls += 1
                t0, k = self._clock(), 0
                pts0 = self.frames_sent * period
                due = t0
            if self._queue:
                pcm, tag = self._queue.popleft()
            else:
                pcm, tag = self._silence, None
            frame = AudioFrame(pcm, self.rate, pts0 + k * period)
            if self._on_send is not None:
                self._on_send(frame, tag)
            await self._send(frame)
            sent_at = self._clock()
            self.frames_sent += 1
            if tag is not None:
                self._last_tag = tag
            if not self._queue:
                self._idle.set()
            if self._on_sent is not None:
                self._on_sent(frame, tag, sent_at)
            k += 1
