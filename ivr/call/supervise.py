"""A supervisor on a live caller-agent bridge: listen, whisper (to the agent only) or barge (three-way).

The supervisor has an audio leg of their own (WebRTC from the wall, :mod:`ivr.web.supervise`). The bridge
(:mod:`ivr.call.warm_transfer`) hands every frame it relays to each :class:`Supervision` on it
(``Bridge.supervisors``) and sends on what comes back:

* ``caller_frame(frame, to_agent)``: a caller frame (call rate) and what the agent is about to hear (agent rate).
  The caller frame, mixed with the agent audio heard since, goes to the supervisor's ear; in ``whisper`` and
  ``barge`` the supervisor's voice is mixed into what the agent hears.
* ``agent_frame(frame, to_caller)``: an agent frame and what the caller is about to hear; the agent frame is kept
  for the supervisor's ear; in ``barge`` the supervisor's voice is mixed into what the caller hears.

So in every mode the supervisor hears both sides; whisper reaches only the agent; barge reaches both. Mixing is
sample-wise addition (clipped) at each destination's rate; the supervisor's voice waits in a short buffer
(``MAX_LAG_S``: older audio is dropped so a stalled stream never builds up delay). The caller's line is the clock
of the supervisor's ear (phone and WebRTC lines send frames continuously, silence included).

Every join, mode change and leave is noted (:meth:`Supervision.note`) in the call record given
(``extra.supervision``) at the moment it happens. The bridge stops its supervisors before it hands the call back
(``warm_transfer``), so a call ending under a supervisor still has the leave in its record when that is saved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from ivr.audio.frames import AudioFrame
from ivr.audio.resample import RateConverter
from ivr.call.playout import Playout
from ivr.call.ports import CallPort
from ivr.events import Hangup

log = logging.getLogger(__name__)
MODES = ("listen", "whisper", "barge")
MAX_LAG_S = 0.3


class _Buffer:
    """Mono int16 samples at one rate, bounded to ``MAX_LAG_S`` (the oldest are dropped)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.data = np.zeros(0, dtype=np.int16)

    def push(self, samples: np.ndarray) -> None:
        self.data = np.concatenate([self.data, samples.astype(np.int16)])[-int(self.rate * MAX_LAG_S):]

    def take(self, n: int) -> np.ndarray:
        """``n`` samples (zero-padded when fewer are waiting)."""
        out, self.data = self.data[:n], self.data[n:]
        return np.pad(out, (0, n - len(out))) if len(out) < n else out

    def clear(self) -> None:
        self.data = self.data[:0]


def _mix(a: AudioFrame, b: np.ndarray) -> AudioFrame:
    if not b.any():
        return a
    s = a.to_numpy().astype(np.int32) + b.astype(np.int32)
    return AudioFrame(np.clip(s, -32768, 32767).astype("<i2").tobytes(), a.sample_rate, a.pts)


class _Voice:
    """The supervisor's voice on its way to one destination (the agent or the caller), at that destination's rate."""

    def __init__(self) -> None:
        self.convert: RateConverter | None = None
        self.buffer: _Buffer | None = None

    def push(self, frame: AudioFrame, rate: int) -> None:
        if self.convert is None or self.convert.out_rate != rate:
            self.convert, self.buffer = RateConverter(rate), _Buffer(rate)
        assert self.buffer is not None
        self.buffer.push(self.convert(frame).to_numpy())

    def mix_into(self, out: AudioFrame) -> AudioFrame:
        if self.buffer is None or self.buffer.rate != out.sample_rate:
            return out
        return _mix(out, self.buffer.take(out.samples))

    def clear(self) -> None:
        if self.buffer is not None:
            self.buffer.clear()


class NotedRecord(Protocol):
    """What a supervision writes to: the live call record's ``extra`` (``CallRecord`` has it)."""

    extra: dict[str, Any]


class Supervision:
    """One supervisor's leg on one bridge (see the module docstring). ``run()`` until the leg or the bridge ends."""

    def __init__(self, call_id: str, supervisor: str, leg: CallPort, mode: str = "listen",
                 on_change: Callable[[str, str], None] | None = None, record: NotedRecord | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.call_id, self.supervisor, self.leg = call_id, supervisor, leg
        self.mode = mode
        self.rate = leg.info.sample_rate
        self.ear = Playout(leg.send_audio, self.rate)  # what the supervisor hears
        self._caller_in, self._agent_in = RateConverter(self.rate), RateConverter(self.rate)
        self._agent_heard = _Buffer(self.rate)  # agent audio waiting for the next caller frame
        self._to_agent, self._to_caller = _Voice(), _Voice()
        self._agent_rate = 0
        self._caller_rate = 0
        self.ended = asyncio.Event()
        self.end_reason = ""
        self.started = time.monotonic()
        self.voice_frames = 0  # supervisor frames received (whatever the mode)
        self._on_change = on_change  # (event, mode) after each note: join | mode | leave
        self.record = record  # the live CallRecord (extra.supervision), or None
        self.last: dict[str, Any] = {}  # the latest entry noted

    # --- the bridge's hooks (called for every relayed frame) --------------------------------------------------
    def caller_frame(self, frame: AudioFrame, to_agent: AudioFrame) -> AudioFrame:
        self._caller_rate = frame.sample_rate
        self._agent_rate = to_agent.sample_rate
        heard = self._caller_in(frame)
        ear = _mix(heard, self._agent_heard.take(heard.samples))
        if self.ear.queued_seconds < MAX_LAG_S:
            self.ear.enqueue(ear)
        return self._to_agent.mix_into(to_agent) if self.mode in ("whisper", "barge") else to_agent

    def agent_frame(self, frame: AudioFrame, to_caller: AudioFrame) -> AudioFrame:
        self._caller_rate = to_caller.sample_rate
        self._agent_heard.push(self._agent_in(frame).to_numpy())
        return self._to_caller.mix_into(to_caller) if self.mode == "barge" else to_caller

    # --- control ----------------------------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if mode != self.mode:
            self.mode = mode
            self._to_agent.clear()
            self._to_caller.clear()
            self.note("mode")

    def note(self, event: str) -> dict[str, Any]:
        """Log ``event`` (join | mode | leave) in the record now, then tell ``on_change``; the entry."""
        entry: dict[str, Any] = {"supervisor": self.supervisor, "event": event, "mode": self.mode,
                                 "at": datetime.now(UTC).isoformat()}
        if event == "leave":
            entry["reason"] = self.end_reason
        if self.record is not None:
            self.record.extra.setdefault("supervision", []).append(entry)
        self.last = entry
        if self._on_change is not None:
            try:
                self._on_change(event, self.mode)
            except Exception as e:  # telling the desk must never keep the leave out of the record
                log.warning("supervision of %s: %s not announced: %s", self.call_id, event, e)
        return entry

    def stop(self, reason: str = "left") -> None:
        """End the supervision (idempotent); the leave is in the record when this returns."""
        if not self.ended.is_set():
            self.end_reason = reason
            self.ended.set()
            self.note("leave")

    async def run(self, bridge_ended: asyncio.Event) -> str:
        """Play the supervisor's ear and read their voice until the leg, the bridge or :meth:`stop` ends it."""
        tasks = [asyncio.create_task(self.ear.run(), name=f"supervise-ear-{self.call_id}"),
                 asyncio.create_task(self._voice(), name=f"supervise-voice-{self.call_id}")]
        bridge_wait = asyncio.ensure_future(bridge_ended.wait())
        try:
            await asyncio.wait([bridge_wait, asyncio.ensure_future(self.ended.wait())],
                               return_when=asyncio.FIRST_COMPLETED)
            if bridge_wait.done():
                self.stop("call_ended")
            return self.end_reason
        finally:
            bridge_wait.cancel()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self.leg.hangup(self.end_reason or "left")

    async def _voice(self) -> None:
        while not self.ended.is_set():
            ev = await self.leg.recv()
            if isinstance(ev, Hangup):
                self.stop("supervisor_hangup")
                return
            if not isinstance(ev, AudioFrame):
                continue
            self.voice_frames += 1
            if self.mode in ("whisper", "barge") and self._agent_rate:
                self._to_agent.push(ev, self._agent_rate)
            if self.mode == "barge" and self._caller_rate:
                self._to_caller.push(ev, self._caller_rate)
