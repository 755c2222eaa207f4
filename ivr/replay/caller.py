"""The simulated caller: plays a fixture into a line in real time and behaves like a person on the phone.

The caller's microphone sends a 20 ms frame every 20 ms for the whole call (silence, or the fixture's background
bed, between utterances), like a real phone line. After each turn the caller waits for the bot to start
answering, listens until the bot has been quiet for a moment, thinks (``wait``), and goes on; a ``barge_in_at``
turn starts talking while the bot is still speaking. What the caller hears (the bot's audio) is watched frame by
frame; latency is measured as the caller experiences it: from the end of their speech (or key press) to the
first bot audio that reaches them.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

import numpy as np

from ivr.audio.frames import AudioFrame, frames_of
from ivr.replay.clock import now
from ivr.replay.loader import LoadedFixture
from ivr.replay.results import BotTurn, CallResult, TurnResult, char_error_rate

FRAME_MS = 20
VOICED_DBFS = -45.0  # bot frames louder than this are speech (TTS silence is digital zero or near it)


@dataclass
class Pace:
    """How the caller behaves in time (seconds)."""

    reply_timeout: float = 12.0  # wait this long for the bot to start answering
    silent_reply_timeout: float = 3.0  # ... when the fixture expects no reply
    quiet: float = 0.8  # the bot is done once it has been quiet this long
    max_reply: float = 120.0  # give up listening to one reply after this long
    key_gap: float = 0.15  # between DTMF keys
    answer_timeout: float = 15.0  # the greeting must start within this
    stop_gap: float = 0.8  # barge-in: the bot's audio stopped at the last voiced frame before a pause this long

    def for_speed(self, speed: float) -> Pace:
        """The same caller on a clock ``speed`` times faster: the bot's processing (TTS, dialogue) takes ``speed``
        times longer in call time there, so what the caller tolerates of it (waiting for an answer, a gap between
        two sentences of one reply) grows with it. What the caller does (key gaps, thinking time), how a
        barge-in's stop is read and how long a silence proves the bot stays silent (under the no-input timer) do
        not."""
        if speed <= 1:
            return self
        return replace(self, reply_timeout=self.reply_timeout * speed, quiet=self.quiet * speed,
                       answer_timeout=self.answer_timeout * speed)


class BotAudio:
    """What the caller hears: arrival times of the bot's voiced frames."""

    def __init__(self, clock: Callable[[], float] = now) -> None:
        self.clock = clock
        self.voiced: list[float] = []  # arrival time of each voiced frame
        self.frames = 0

    def feed(self, frame: AudioFrame, at: float | None = None) -> None:
        """Called by the line for every frame of bot audio received."""
        self.frames += 1
        if frame.pcm and frame.rms_dbfs() > VOICED_DBFS:
            self.voiced.append(self.clock() if at is None else at)

    def last_voiced(self) -> float | None:
        return self.voiced[-1] if self.voiced else None

    def speaking(self, quiet: float, now: float | None = None) -> bool:
        """True if a voiced frame arrived within the last ``quiet`` seconds."""
        last = self.last_voiced()
        return last is not None and ((self.clock() if now is None else now) - last) < quiet

    def first_voiced_after(self, t: float) -> float | None:
        i = bisect.bisect_left(self.voiced, t)
        return self.voiced[i] if i < len(self.voiced) else None

    def stop_after(self, t: float, gap: float) -> float | None:
        """Arrival of the last voiced frame before the first pause of ``gap`` seconds after ``t``."""
        i = bisect.bisect_left(self.voiced, t)
        if i >= len(self.voiced):
            return None
        prev = self.voiced[i]
        for v in self.voiced[i + 1 :]:
            if v - prev >= gap:
                return prev
            prev = v
        return prev

    def voiced_seconds(self, t0: float, t1: float) -> float:
        return (bisect.bisect_left(self.voiced, t1) - bisect.bisect_left(self.voiced, t0)) * FRAME_MS / 1000

    async def wait_onset(self, after: float, timeout: float, ended: asyncio.Event) -> float | None:
        """Time of the first voiced frame at or after ``after``; None on timeout or hang-up."""
        deadline = self.clock() + timeout
        while True:
            t = self.first_voiced_after(after)
            if t is not None:
                return t
            if ended.is_set() or self.clock() >= deadline:
                return None
            await asyncio.sleep(0.01)

    async def wait_quiet(self, quiet: float, timeout: float, ended: asyncio.Event) -> None:
        """Return once no voiced frame arrived for ``quiet`` seconds (or the call ended / timeout)."""
        deadline = self.clock() + timeout
        while self.speaking(quiet) and not ended.is_set() and self.clock() < deadline:
            await asyncio.sleep(0.01)


class CallerLine(Protocol):
    """A phone line as the caller sees it (direct in-process port, WebRTC client, SIP client)."""

    sample_rate: int
    bot_audio: BotAudio
    ended: asyncio.Event  # set when the bot or the system ended the call

    async def dial(self) -> None: ...
    async def send_audio(self, frame: AudioFrame) -> None: ...
    async def send_dtmf(self, digit: str) -> None: ...
    async def hangup(self) -> None: ...
    async def finish(self) -> LineReport: ...


@dataclass
class LineReport:
    """What the far end recorded about the call (from the call record, when the line can see it)."""

    call_id: str = ""
    outcome: str = ""
    ended_by: str = ""
    end_reason: str = ""
    turns: list[tuple[datetime, BotTurn]] = field(default_factory=list)  # (record time, bot turn)
    vad_segments: dict[int, int] = field(default_factory=dict)  # turn index -> utterances cut (reference mode)
    asr_mode: str = ""
    notes: list[str] = field(default_factory=list)


class Mic:
    """The caller's microphone: one frame every 20 ms, speech when a clip is queued, else silence/background."""

    def __init__(self, line: CallerLine, rate: int, *, background: AudioFrame | None = None) -> None:
        self.line = line
        self.rate = rate
        self.period = FRAME_MS / 1000
        self.n = rate * FRAME_MS // 1000
        self._queue: deque[bytes] = deque()
        self._done: asyncio.Future[tuple[float, float]] | None = None
        self._first_sent: float | None = None
        self._bg = None if background is None else background.to_numpy().astype(np.int32)
        self._bg_pos = 0
        self.frames_sent = 0
        self.on_clip_start: Callable[[float], None] | None = None

    @property
    def pts(self) -> float:
        """Stream time of the next frame."""
        return self.frames_sent * FRAME_MS / 1000

    async def play(self, clip: AudioFrame) -> tuple[float, float]:
        """Queue a clip; returns (monotonic time its first frame was sent, time its last frame was sent)."""
        assert self._done is None, "one clip at a time"
        self._queue.extend(f.pcm for f in frames_of(clip, FRAME_MS))
        self._done = asyncio.get_running_loop().create_future()
        self._first_sent = None
        try:
            return await self._done
        finally:
            self._done = None

    def _mix(self, pcm: bytes | None) -> bytes:
        if self._bg is None:
            return pcm if pcm is not None else bytes(2 * self.n)
        idx = (np.arange(self.n) + self._bg_pos) % len(self._bg)
        self._bg_pos = (self._bg_pos + self.n) % len(self._bg)
        x = self._bg[idx] + (np.frombuffer(pcm, "<i2").astype(np.int32) if pcm is not None else 0)
        return np.clip(x, -32768, 32767).astype("<i2").tobytes()

    async def run(self) -> None:
        """Send frames until cancelled (drift-free schedule, like a sound card clock)."""
        t0 = now()
        k = 0
        while True:
            delay = t0 + k * self.period - now()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > 0.2:  # the loop stalled: re-anchor rather than burst
                t0, k = now(), 0
            speech = self._queue.popleft() if self._queue else None
            frame = AudioFrame(self._mix(speech), self.rate, self.pts)
            if speech is not None and self._first_sent is None:
                self._first_sent = now()
                if self.on_clip_start is not None:
                    self.on_clip_start(frame.pts)
            await self.line.send_audio(frame)
            self.frames_sent += 1
            k += 1
            if speech is not None and not self._queue and self._done is not None and not self._done.done():
                self._done.set_result((self._first_sent or now(), now()))


def _input_text(turn) -> str:
    if turn.kind == "say":
        return turn.text or ""
    if turn.kind == "dtmf":
        return turn.dtmf or ""
    if turn.kind == "silence":
        return f"{turn.silence:g} s silence"
    return "hang up"


async def play_call(
    lf: LoadedFixture,
    line: CallerLine,
    *,
    pace: Pace | None = None,
    on_clip: Callable[[int, str, float, float], None] | None = None,
) -> tuple[CallResult, LineReport]:
    """Play one fixture as one call on ``line``; returns the observations (expectations are checked later).

    ``on_clip(turn_index, reference_text, start_pts, end_pts)`` is told where each utterance sits in the
    caller's audio stream before it is sent (the reference-transcript listener uses it).
    """
    pace = (pace or Pace()).for_speed(getattr(asyncio.get_running_loop(), "speed", 1.0))
    fx = lf.fixture
    bot = line.bot_audio
    result = CallResult(fixture=fx.name, path=str(lf.path), via="", asr="", description=fx.description)
    t_call = now()
    marks: list[float] = [time.time()]  # wall-clock start of each window: greeting, turns[0], ...
    await line.dial()
    mic = Mic(line, lf.sample_rate, background=lf.background)
    mic_task = asyncio.create_task(mic.run(), name=f"mic-{fx.name}")
    ended = line.ended
    try:
        greet = TurnResult(index=-1, kind="greeting", input="")
        onset = await bot.wait_onset(t_call, pace.answer_timeout, ended)
        if onset is not None:
            greet.heard_ms = (onset - t_call) * 1000
        if fx.turns[0].barge_in_at is None:
            await bot.wait_quiet(pace.quiet, pace.max_reply, ended)
        greet.reply_audio_s = bot.voiced_seconds(t_call, now())
        greet.bot_hung_up = ended.is_set()
        result.turns.append(greet)
        reply_onset = onset
        for i, turn in enumerate(fx.turns):
            tr = TurnResult(index=i, kind=turn.kind, input=_input_text(turn), audio=turn.say or "")
            if ended.is_set():
                if turn.kind != "hangup":
                    tr.failures.append(f"{fx.name}: turns[{i}] was not played: the bot had already ended the call")
                    result.turns.append(tr)
                break
            bot_was_speaking = False
            if turn.barge_in_at is not None:
                if reply_onset is not None:
                    delay = reply_onset + turn.barge_in_at  - now()
                    if delay > 0:
                        await asyncio.sleep(delay)
            elif turn.wait > 0:  # thinking time, from the end of the bot's last words (not from noticing it)
                last = bot.last_voiced()
                await asyncio.sleep(turn.wait if last is None else max(0.0, min(turn.wait, last + turn.wait - now())))
            marks.append(time.time())
            t_in = now()
            input_end = t_in
            speech_start = t_in
            if turn.kind == "say":
                clip = lf.clips[i]
                start_pts = mic.pts
                if on_clip is not None:
                    on_clip(i, turn.text or "", start_pts + clip.speech_start_s, start_pts + clip.audio.duration)
                t_first, _ = await mic.play(clip.audio)
                speech_start = t_first + clip.speech_start_s
                input_end = t_first + clip.speech_end_s
                if turn.barge_in_at is not None:
                    bot_was_speaking = bot.speaking(0.3, now=speech_start)
            elif turn.kind == "dtmf":
                for d in turn.dtmf or "":
                    await line.send_dtmf(d)
                    input_end = now()
                    await asyncio.sleep(pace.key_gap )
            elif turn.kind == "silence":
                await asyncio.sleep(turn.silence or 0 )
                input_end = now()
            else:
                await line.hangup()
                result.turns.append(tr)
                break
            listen_from = input_end
            if bot_was_speaking:
                # the reply the caller talked over has either stopped (barge-in) or plays on (backchannel):
                # its end is the last bot audio before a pause as long as the caller's patience
                await bot.wait_quiet(pace.quiet, pace.max_reply, ended)
                stop = bot.stop_after(speech_start, pace.stop_gap)
                tr.interrupted = stop is not None and stop < input_end
                tr.stop_ms = max(0.0, (stop - speech_start) * 1000) if tr.interrupted and stop is not None else None
                if stop is not None:
                    listen_from = max(input_end, stop + 0.05)
            # listen for the answer
            if turn.kind == "silence":
                # a silent caller stays silent until the bot speaks: under load (or a sped-up clock) the reprompt
                # may come after the fixture's seconds, and must not slide into the next turn's window
                onset = bot.first_voiced_after(t_in)
                if onset is None and not (turn.expect is not None and turn.expect.reply is False):
                    onset = await bot.wait_onset(t_in, pace.reply_timeout, ended)
                tr.heard_ms = None
            else:
                expect_silence = turn.expect is not None and turn.expect.reply is False
                onset = await bot.wait_onset(
                    listen_from, pace.silent_reply_timeout if expect_silence else pace.reply_timeout, ended
                )
                tr.heard_ms = None if onset is None else (onset - input_end) * 1000
            reply_onset = onset
            nxt = fx.turns[i + 1] if i + 1 < len(fx.turns) else None
            if nxt is None or nxt.barge_in_at is None:
                await bot.wait_quiet(pace.quiet, pace.max_reply, ended)
            tr.reply_audio_s = bot.voiced_seconds(t_in, now())
            if ended.is_set():
                await asyncio.sleep(0.05)
            tr.bot_hung_up = ended.is_set()
            result.turns.append(tr)
        else:
            if not ended.is_set():
                await line.hangup()
    finally:
        mic_task.cancel()
        try:
            await mic_task
        except (asyncio.CancelledError, Exception):
            pass
    report = await line.finish()
    result.duration_s = now() - t_call
    _attribute(result, report, marks)
    return result, report


def _attribute(result: CallResult, report: LineReport, marks: list[float]) -> None:
    """Give each recorded bot turn to the caller turn whose window it falls in (by wall-clock time)."""
    result.call_id = report.call_id
    result.outcome, result.ended_by, result.end_reason = report.outcome, report.ended_by, report.end_reason
    result.notes += report.notes
    windows = result.turns
    for at, bt in report.turns:
        ts = at.timestamp()
        k = max(0, bisect.bisect_right(marks, ts) - 1)
        if k < len(windows):
            windows[k].bot_turns.append(bt)
        for a in bt.actions:
            if a not in result.actions:
                result.actions.append(a)
    for tr in windows:
        if tr.kind == "say":
            tr.asr_mode = next((b.input_source for b in tr.bot_turns if b.kind == "speech" and b.input_source),
                               report.asr_mode or "-")
            tr.vad_segments = report.vad_segments.get(tr.index)
            if tr.asr_mode == "asr" and "*" not in tr.heard:  # a masked answer (verification) cannot be scored
                tr.cer = round(char_error_rate(tr.input, tr.heard.replace(" / ", " ")), 3)
        elif tr.kind == "dtmf":
            tr.asr_mode = "dtmf"
    # a barge-in turn: the record knows whether the reply it interrupted was cut
    for k, tr in enumerate(windows):
        if tr.interrupted is not None and k > 0:
            cut = [b.barged_in for b in windows[k - 1].bot_turns] + [b.barged_in for b in tr.bot_turns]
            if report.turns:
                tr.interrupted = any(cut)
