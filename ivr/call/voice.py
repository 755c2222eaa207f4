"""The bot's side of the line: the reply being spoken (TTS -> paced playout), first-audio stamping, and
interruption (barge-in flushes the playout queue and the transport's own buffer).

A reply's leading quiet is trimmed (:class:`ivr.audio.trim.LeadTrimmer`), so its first frame is audible; it carries ``meta["on_air"]``: a port that reports it
(``reports_on_air``: SIP's RTP clock, WebRTC's track pull) calls it with the moment the packet holding the frame's
first sample went to the network, which ends the turn's trace; other ports' frames count when handed over."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ivr.audio.frames import AudioFrame
from ivr.audio.resample import resample
from ivr.audio.trim import LeadTrimmer
from ivr.call.parts import TtsLike
from ivr.call.playout import Played, Playout, Tag
from ivr.call.ports import CallPort
from ivr.dialog.types import BotReply
from ivr.events import TurnTiming
from ivr.services.records.model import TurnRecord

log = logging.getLogger(__name__)


@dataclass
class Speech:
    """One reply being spoken."""

    local_id: int
    reply: BotReply
    turn: TurnRecord | None
    timing: TurnTiming
    input_kind: str
    task: asyncio.Task[None] | None = None
    first_sent: bool = False  # its first audible frame went to the port


class BotVoice:
    """Speaks replies on ``port``. ``on_first_audio(speech)`` fires when a reply's first frame left,
    ``on_quiet(at)`` when the last reply has been played out, ``on_frame(frame)`` for every frame sent."""

    def __init__(self, port: CallPort, tts: TtsLike, clock: Callable[[], float], *,
                 on_first_audio: Callable[[Speech], None], on_quiet: Callable[[float], None],
                 on_frame: Callable[[AudioFrame], None]) -> None:
        self.port = port
        self.tts = tts
        self.rate = port.info.sample_rate
        self.clock = clock
        self.playout = Playout(port.send_audio, self.rate, on_sent=self._on_sent, on_send=self._on_send, clock=clock)
        self._port_stamps = bool(getattr(port, "reports_on_air", False))
        self.current: Speech | None = None
        self.spoken = 0  # replies started
        self.timings: list[tuple[str, TurnTiming]] = []  # (input kind, timing) per reply, for benchmarks
        self._on_first_audio = on_first_audio
        self._on_quiet = on_quiet
        self._on_frame = on_frame

    def talking(self) -> bool:
        """Audio is queued or still being synthesised."""
        cur = self.current
        return self.playout.busy or (cur is not None and cur.task is not None and not cur.task.done())

    def start(self, reply: BotReply, kind: str, timing: TurnTiming | None, turn: TurnRecord | None) -> Speech:
        """Start speaking ``reply`` (it replaces whatever was current); its task is None if it has no audio."""
        self.spoken += 1
        cur = Speech(self.spoken, reply, turn, timing or TurnTiming(), kind)
        self.current = cur
        self.timings.append((kind, cur.timing))
        if reply.segments:
            cur.task = asyncio.create_task(self._feed(cur), name=f"speech-{self.port.info.call_id}-{cur.local_id}")
        return cur

    async def until_played(self, cur: Speech, ended: asyncio.Event) -> None:
        """Wait until ``cur`` has been played (or cut off, or the call ended)."""
        assert cur.task is not None
        try:
            await asyncio.shield(cur.task)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the call is being torn down: not just this reply cut short by a barge-in
        while self.current is cur and self.playout.busy and not ended.is_set():
            await self.playout.wait_idle()
        if self.current is cur:
            self.current = None

    def interrupt(self, force: bool = False) -> tuple[Speech, Played] | None:
        """Stop the current reply now if it may be interrupted: what of it was played, or None."""
        cur = self.current
        if cur is None or not self.talking() or (not cur.reply.barge_in and not force):
            return None
        if cur.task is not None and not cur.task.done():
            cur.task.cancel()
        played = self.playout.flush()
        with contextlib.suppress(Exception):
            self.port.flush()  # audio the transport still buffers (RTP queue, WebRTC track)
        if cur.turn is not None:
            cur.turn.barged_in = True
            cur.turn.segments_played = played.segments_played if played.reply_id == cur.local_id else 0
        if played.reply_id != cur.local_id:
            played = Played(cur.local_id, 0, 0.0, played.dropped_frames)
        self.current = None
        return cur, played

    def tasks(self) -> list[asyncio.Task[None]]:
        cur = self.current
        return [cur.task] if cur is not None and cur.task is not None else []

    async def _feed(self, cur: Speech) -> None:
        first = True
        trim = LeadTrimmer()  # the reply's leading quiet (TTS lead-in) is not played: the caller waits for nothing
        for i, seg in enumerate(cur.reply.segments):
            try:
                async for audio in self.tts.stream(seg.text, self.rate, prompt_id=seg.prompt_id):
                    audio = resample(audio, self.rate)
                    if not trim.done:
                        audio = trim(audio)
                        if not audio.pcm:
                            continue
                    self.playout.enqueue(audio, cur.local_id, i)
                    if first:
                        cur.timing.tts_first_audio_queued = self.clock()
                        first = False
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a segment TTS cannot say is skipped, not the whole call
                log.warning("TTS failed for a segment: %s", e)
            self.playout.end_of_audio()

    def _first_audible(self, tag: Tag | None) -> Speech | None:
        """The current reply, if ``tag`` is its first frame (audible: its leading quiet was trimmed); marks it."""
        cur = self.current
        if tag is None or cur is None or tag.reply_id != cur.local_id or cur.first_sent:
            return None
        cur.first_sent = True
        return cur

    def _on_send(self, frame: AudioFrame, tag: Tag | None) -> None:
        if not self._port_stamps:
            return
        cur = self._first_audible(tag)
        if cur is not None:
            frame.meta["on_air"] = lambda at, cur=cur: self._aired(cur, at)

    def _aired(self, cur: Speech, at: float) -> None:
        cur.timing.first_audio_sent = at
        self._on_first_audio(cur)

    def _on_sent(self, frame: AudioFrame, tag: Tag | None, sent_at: float) -> None:
        self._on_frame(frame)
        cur = None if self._port_stamps else self._first_audible(tag)
        if cur is not None:
            self._aired(cur, sent_at)
        cur = self.current
        if tag is None and cur is not None and cur.task is not None and cur.task.done() and not self.playout.busy:
            self.current = None
            self._on_quiet(sent_at)
