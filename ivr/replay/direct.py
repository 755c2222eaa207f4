"""``--via direct``: the fixture's caller talks to a real call session in this process.

The line is the in-process port :class:`~ivr.call.local.LocalPort`; :class:`CallerSide` is the simulated
caller's view of it. The session (built by :func:`ivr.wiring.replay_session`), its listener (real VAD), the
dialogue, the shop and TTS are the real ones. With ``--asr reference`` the listener is
:class:`ReferenceListener`: the real VAD segmenter decides when the caller spoke and stopped, and at each real
endpoint the turn's reference transcript stands in for the recogniser's output.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ivr.asr.vad import Segmenter, VadOptions
from ivr.audio.frames import AudioFrame
from ivr.call.local import LocalPort
from ivr.call.parts import ListenerEvent, ListenerLike
from ivr.call.session import CallSession
from ivr.events import SpeechEnded, Transcript
from ivr.replay.caller import BotAudio, LineReport
from ivr.replay.clock import now
from ivr.replay.results import BotTurn
from ivr.services.records.model import CallRecord

log = logging.getLogger(__name__)
_seq = itertools.count(1)


@dataclass
class _Span:
    turn: int
    text: str
    start: float
    end: float
    used: bool = False


class ReferenceListener:
    """The Listener interface with the real VAD and reference text in place of ASR.

    The caller tells it where each utterance lies in the inbound stream (:meth:`expect`); at each endpoint the
    segmenter finds, the transcript of the utterance it overlaps is emitted once as
    ``Transcript(source="reference")``. Endpoints outside any utterance (noise) and extra pieces of a split
    utterance produce no transcript, exactly as a recogniser that heard nothing.
    """

    def __init__(self, sample_rate: int, options: VadOptions, clock: Callable[[], float] = now) -> None:
        self.sample_rate = sample_rate
        self.segmenter = Segmenter(sample_rate, options)
        self.clock = clock
        self.spans: list[_Span] = []
        self.segments: dict[int, int] = {}  # turn index -> utterances the VAD cut from it
        self.unmatched = 0  # endpoints outside every utterance (noise, coughs)

    @property
    def bot_speaking(self) -> bool:
        return self.segmenter.bot_speaking

    @bot_speaking.setter
    def bot_speaking(self, value: bool) -> None:
        self.segmenter.bot_speaking = value

    def expect(self, turn: int, text: str, start_pts: float, end_pts: float) -> None:
        """The caller is about to say ``text`` at stream time [start_pts, end_pts]."""
        self.spans.append(_Span(turn, text, start_pts, end_pts))

    async def push(self, frame: AudioFrame, now: float | None = None) -> list[ListenerEvent]:
        at = self.clock() if now is None else now
        events: list[ListenerEvent] = []
        for ev in self.segmenter.push(frame, at):
            events.append(ev)
            if isinstance(ev, SpeechEnded):
                span = self._match(ev.start_pts, ev.end_pts)
                if span is None:
                    self.unmatched += 1
                    continue
                self.segments[span.turn] = self.segments.get(span.turn, 0) + 1
                if not span.used:
                    span.used = True
                    events.append(Transcript(span.text, True, at, 1.0, source="reference"))
        return events

    def _match(self, start: float, end: float) -> _Span | None:
        for span in self.spans:
            if start < span.end + 0.3 and end > span.start - 0.3:
                return span
        return None

    async def open(self) -> None:
        """Nothing to get ready: no recogniser."""

    async def close(self) -> None:
        self.spans.clear()


class CallerSide:
    """The caller's view of an in-process line with a session running behind it."""

    def __init__(self, line: LocalPort, start_session: Callable[[LocalPort], CallSession],
                 listener: ListenerLike | None = None) -> None:
        self.line = line
        self.listener = listener
        self.sample_rate = line.info.sample_rate
        self.bot_audio = BotAudio()
        line.on_bot_audio = self.bot_audio.feed
        self.ended = line.ended
        self._start_session = start_session
        self._task: asyncio.Task[CallRecord] | None = None
        self.session: CallSession | None = None

    async def dial(self) -> None:
        self.session = self._start_session(self.line)
        self._task = asyncio.create_task(self.session.run(), name=f"session-{self.line.info.call_id}")
        self._task.add_done_callback(lambda _t: self.ended.set())

    async def send_audio(self, frame: AudioFrame) -> None:
        if not self.ended.is_set():
            self.line.caller_audio(frame)

    async def send_dtmf(self, digit: str) -> None:
        if not self.ended.is_set():
            self.line.press(digit)

    async def hangup(self) -> None:
        self.line.caller_hangup()

    async def finish(self) -> LineReport:
        assert self._task is not None and self.session is not None
        try:
            record = await asyncio.wait_for(asyncio.shield(self._task), timeout=30)
        except TimeoutError:
            self.session.hangup_now("system", "replay_timeout")
            record = await self._task
        report = report_from_record(record)
        if isinstance(self.listener, ReferenceListener):
            report.vad_segments = dict(self.listener.segments)
            if self.listener.unmatched:
                report.notes.append(f"{self.listener.unmatched} utterance(s) detected outside the caller's speech")
        return report


def report_from_record(record: CallRecord) -> LineReport:
    """A call record (``ivr.services.records.model.CallRecord``) as the caller-side report."""
    rep = LineReport(call_id=record.call_id, outcome=record.outcome, ended_by=record.ended_by,
                     end_reason=record.end_reason, asr_mode=record.asr_mode)
    for t in record.turns:
        if t.speaker != "bot":
            continue
        rep.turns.append((t.at, BotTurn(
            kind=t.kind, caller_text=t.caller_text, input_source=t.input_source, text=t.bot_text, intent=t.intent,
            slots=dict(t.slots), actions=list(t.actions), state=t.state, barged_in=t.barged_in,
            latency_ms=t.latency_ms, timing=dict(t.timing),
        )))
    return rep


# --- the shop a direct call talks to ---------------------------------------------------------------------------
@dataclass
class DemoShops:
    """A freshly seeded demo shop per call (copied from one seeded template), so every fixture meets the
    documented demo orders in their documented state, whatever other calls did to theirs."""

    seed: int = 7
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ivr-replay-")))
    _template: Path | None = None

    def prepare(self) -> None:
        """Seed the template once (blocking; call before the calls start)."""
        from ivr.services.shop.seed import seed_demo

        path = self.root / "template.db"
        url = f"sqlite:///{path}"
        seed_demo(url, seed=self.seed)
        _dispose(url)
        self._template = path

    def new_url(self) -> str:
        assert self._template is not None, "prepare() first"
        path = self.root / f"call-{next(_seq)}.db"
        shutil.copyfile(self._template, path)
        return f"sqlite:///{path}"

    def release(self, url: str) -> None:
        _dispose(url)
        path = Path(url.removeprefix("sqlite:///"))
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            p.unlink(missing_ok=True)

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _dispose(url: str) -> None:
    from ivr.services.db import dispose_engine

    dispose_engine(url)


def new_line(caller_id: str, rate: int, language: str) -> LocalPort:
    """The in-process line of one replayed call (on the replay clock, bot audio not kept: the caller hears it)."""
    return LocalPort(f"replay-{uuid.uuid4().hex[:10]}", sample_rate=rate, caller_id=caller_id, channel="replay",
                     language=language, keep_audio=False, clock=now)
