"""The in-process transport: a :class:`CallPort` whose far end is Python code (tests, benchmarks, fixture replay,
the one in-process port there is).

The caller side either has its own 20 ms clock, like a phone line (:meth:`LocalPort.start`, :meth:`LocalPort.say`:
silence when the caller says nothing, so the listener's endpointing sees real trailing silence), or is driven frame
by frame by a simulated caller (:meth:`LocalPort.caller_audio`, as fixture replay's microphone does). Bot audio is
kept with the time it was sent and/or handed to ``on_bot_audio``; with ``keep_audio`` the caller line's frames are
kept with the time the line really sent them (a starved event loop sends late: measure from these, not the plan).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from ivr.audio.frames import AudioFrame
from ivr.audio.resample import resample
from ivr.call.notices import Notice, StateNotice, TranscriptNotice
from ivr.call.playout import Playout
from ivr.call.ports import CallInfo, CallPort, InboundEvent
from ivr.events import DtmfDigits, Hangup, Transcript


class LocalPort(CallPort):
    """Both ends of a call in one process. Use :meth:`start` before the session runs, :meth:`close` after."""

    def __init__(
        self,
        call_id: str | None = None,
        *,
        sample_rate: int = 16000,
        caller_id: str = "",
        channel: str = "replay",
        language: str = "zh-CN",
        extra: dict[str, Any] | None = None,
        keep_audio: bool = True,
        clock: Callable[[], float] = time.monotonic,
        on_bot_audio: Callable[[AudioFrame], None] | None = None,
    ) -> None:
        self.info = CallInfo(call_id or uuid.uuid4().hex[:12], channel, caller_id, sample_rate, language, extra or {})
        self._inbound: asyncio.Queue[InboundEvent] = asyncio.Queue()
        self._caller = Playout(self._to_bot, sample_rate, clock=clock)  # the caller's line keeps the port's clock
        self._clock_task: asyncio.Task | None = None
        self.keep_audio = keep_audio
        self.clock = clock
        self.on_bot_audio = on_bot_audio
        self.ended = asyncio.Event()  # set once the bot hung up
        self.sent: list[tuple[float, AudioFrame]] = []  # (monotonic time sent, frame) of bot audio
        self.caller_sent: list[tuple[float, AudioFrame]] = []  # (time the caller's line sent it, frame), kept audio
        self.events: list[Notice] = []  # what a softphone would show
        self.hung_up: str | None = None  # reason, once the bot hung up
        self.bot_frames = 0
        self._closed = asyncio.Event()

    # --- the caller's side ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the caller's line clock (20 ms frames of caller audio or silence)."""
        if self._clock_task is None:
            self._clock_task = asyncio.create_task(self._caller.run(), name=f"caller-line-{self.info.call_id}")

    def say(self, audio: AudioFrame) -> None:
        """Queue caller speech; it goes out in real time after what is already queued."""
        self._caller.enqueue(resample(audio, self.info.sample_rate))
        self._caller.end_of_audio()

    async def finish_saying(self) -> None:
        """Wait until queued caller audio has been sent."""
        await self._caller.wait_idle()

    def caller_audio(self, frame: AudioFrame) -> None:
        """One frame of caller audio, straight to the bot (the caller keeps its own clock)."""
        if self.hung_up is None:
            self._inbound.put_nowait(frame)

    def press(self, digits: str) -> None:
        self._inbound.put_nowait(DtmfDigits(digits, self.clock()))

    def reference(self, text: str) -> None:
        """Reference transcript for the next utterance (used instead of ASR when the call has none)."""
        self._inbound.put_nowait(Transcript(text, True, self.clock(), source="reference"))

    def caller_hangup(self, reason: str = "caller_hangup") -> None:
        self._inbound.put_nowait(Hangup("caller", reason, self.clock()))

    async def close(self) -> None:
        """Stop the caller's clock (idempotent)."""
        self._caller.closed = True
        t, self._clock_task = self._clock_task, None
        if t is not None:
            t.cancel()
            await asyncio.gather(t, return_exceptions=True)

    async def _to_bot(self, frame: AudioFrame) -> None:
        if self.keep_audio:
            self.caller_sent.append((self.clock(), frame))
        self.caller_audio(frame)

    # --- CallPort --------------------------------------------------------------------------------------------
    async def recv(self) -> InboundEvent:
        return await self._inbound.get()

    async def send_audio(self, frame: AudioFrame) -> None:
        self.bot_frames += 1
        if self.keep_audio:
            self.sent.append((self.clock(), frame))
        if self.on_bot_audio is not None:
            self.on_bot_audio(frame)

    async def hangup(self, reason: str = "") -> None:
        if self.hung_up is None:
            self.hung_up = reason or "bot_hangup"
        self._caller.closed = True
        self.ended.set()

    def notify(self, notice: Notice) -> None:
        self.events.append(notice)

    # --- what the caller heard -----------------------------------------------------------------------------
    def bot_text(self) -> list[str]:
        """Bot lines shown to the caller so far."""
        return [e.text for e in self.events if isinstance(e, TranscriptNotice) and e.who == "bot"]

    async def wait_bot(self, lines: int, timeout: float = 30.0, *, quiet: bool = True) -> list[str]:
        """Wait until the bot has said ``lines`` lines (and, with ``quiet``, finished speaking); returns them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            said = self.bot_text()
            if len(said) >= lines and (not quiet or self._quiet_after(lines)):
                return said
            await asyncio.sleep(0.05)
        raise TimeoutError(f"bot said {len(self.bot_text())} of {lines} lines within {timeout:.0f}s: {self.bot_text()} "
                           f"(events: {self.events[-6:]})")

    def _quiet_after(self, lines: int) -> bool:
        seen = 0
        state = ""
        for e in self.events:
            if isinstance(e, TranscriptNotice) and e.who == "bot":
                seen += 1
                state = ""
            elif isinstance(e, StateNotice) and seen >= lines:
                state = e.state
        return state in ("listening", "ended") or self.hung_up is not None

    def voiced_spans(self, threshold_dbfs: float = -45.0) -> list[tuple[float, float]]:
        """(start, end) monotonic times of non-silent bot audio runs."""
        spans: list[tuple[float, float]] = []
        for t, f in self.sent:
            if f.rms_dbfs() > threshold_dbfs:
                if spans and t - spans[-1][1] <= 0.061:
                    spans[-1] = (spans[-1][0], t)
                else:
                    spans.append((t, t))
        return spans
