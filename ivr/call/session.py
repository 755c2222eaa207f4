"""One call from answer to hang-up, for any transport: audio in -> listener -> dialogue -> TTS -> paced playout.

This is the real-time core only. Tasks per call: the inbound reader (port -> listener events, DTMF, hang-up),
the "brain" (one dialogue step at a time, off the event loop), the speech feeder of the current reply
(TTS -> playout), the playout clock and a ticker (no-input reprompts, maximum call length). Barge-in is handled
in the inbound reader itself, so the bot stops within one audio frame of the listener's decision. Every turn's
:class:`~ivr.events.TurnTiming` is stamped hop by hop and kept in the call record.

Around it: ``call.transfer`` (what a transfer hook may do), ``call.prompts`` (the call's own lines),
``call.turns`` (turn records, outcome, saving), ``call.notices`` (what the caller's screen is told).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ivr.asr.endpoint import Expectation
from ivr.audio.frames import AudioFrame
from ivr.audio.resample import RateConverter
from ivr.call.metrics import CallMetrics
from ivr.call.notices import DtmfNotice, Notice, StateNotice, TranscriptNotice, tell
from ivr.call.options import SessionOptions
from ivr.call.parts import DialogLike, DialogRunner, ListenerEvent, ListenerLike, TtsLike
from ivr.call.playout import Played
from ivr.call.ports import CallPort, ready_or_ended
from ivr.call.prompts import system_line
from ivr.call.recorder import StereoRecorder, recording_path
from ivr.call.trace import ArrivalLog
from ivr.call.transfer import CallControl, TransferHook, default_transfer
from ivr.call.turns import Ending, RecordStoreLike, TurnInput, TurnWriter, save_record
from ivr.call.voice import BotVoice, Speech
from ivr.dialog.types import BotReply, Segment
from ivr.events import BargeIn, DtmfDigits, Hangup, SpeechEnded, SpeechStarted, Transcript, TurnTiming
from ivr.log import call_id_var
from ivr.privacy import mask_phone
from ivr.services.records.masking import caller_key
from ivr.services.records.model import CallRecord, TurnRecord

log = logging.getLogger(__name__)


@dataclass
class _Input:
    kind: str  # "speech" | "dtmf" | "no_input" | "played" | "end"
    text: str = ""
    confidence: float = 1.0
    source: str = ""
    timing: TurnTiming = field(default_factory=TurnTiming)
    played: tuple[int, Played] | None = None


class CallSession:
    """Runs one call; :meth:`run` returns the finished :class:`CallRecord` (also saved to ``store``)."""

    def __init__(
        self,
        port: CallPort,
        *,
        dialog: DialogLike,
        listener: ListenerLike,
        tts: TtsLike,
        options: SessionOptions | None = None,
        asr_mode: str = "asr",
        executor: Executor | None = None,
        metrics: CallMetrics | None = None,
        store: RecordStoreLike | None = None,
        transfer_hook: TransferHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.port = port
        self.info = port.info
        self.rate = port.info.sample_rate
        self.opts = options or SessionOptions()
        self.dialog = DialogRunner(dialog, executor)
        self.listener = listener
        self.asr_mode = asr_mode
        self.metrics = metrics
        self.store = store
        self.transfer_hook = transfer_hook or default_transfer
        self.clock = clock
        self.caller_tap: Callable[[AudioFrame], None] | None = None
        self.record = CallRecord(
            call_id=self.info.call_id, channel=self.info.channel, caller=mask_phone(self.info.caller_id),
            caller_key=caller_key(self.info.caller_id, self.opts.caller_key_secret), language=self.info.language,
            asr_mode=asr_mode,
        )
        self.turns = TurnWriter(self.record)
        self.voice = BotVoice(port, tts, clock, on_first_audio=self._first_audio, on_quiet=self._quiet,
                              on_frame=self._bot_frame)
        self.playout = self.voice.playout
        self.timings = self.voice.timings  # (input kind, timing) per turn, for benchmarks
        self.recorder: StereoRecorder | None = None
        self.barge_ins: list[tuple[float, float]] = []  # (listener decision, playout flushed), monotonic
        self._inputs: asyncio.Queue[_Input] = asyncio.Queue()
        self._references: collections.deque[Transcript] = collections.deque()
        self._tasks: list[asyncio.Task[None]] = []
        self._done = asyncio.Event()
        self._end_requested = False
        self._ended_by = ""
        self._end_reason = ""
        self._outcome = ""
        self._transferring = False
        self._started = clock()
        self._last_activity = self._started
        self._caller_speaking = False
        self._utt_overlapped = False
        self._utt_long = False
        self._open_timing: TurnTiming | None = None
        self._brain_busy = False
        self._dialog_ended = False
        self._grace: asyncio.TimerHandle | None = None
        self._no_input_count = 0
        self._expect = "speech"
        self._to_listener = RateConverter(listener.sample_rate)
        self._arrivals = ArrivalLog()  # issue 13: turns start at the caller's last voiced audio (call/trace.py)

    # --- public --------------------------------------------------------------------------------------------
    async def run(self) -> CallRecord:
        """Answer, converse until either side hangs up, tear down, and return the record."""
        token = call_id_var.set(self.info.call_id)
        try:
            if self.opts.record_audio and self.opts.recordings_dir is not None:
                path = recording_path(self.opts.recordings_dir, self.info.call_id)
                self.recorder = StereoRecorder(path, self.rate, clock=self.clock)
                self.record.recording_path = str(path)
            await save_record(self.store, self.record)
            # e.g. WebRTC: do not talk before ICE/DTLS carry audio; a hang-up meanwhile ends the wait
            if not await ready_or_ended(self.port, self._done, self.opts.connect_timeout_s):
                self._finish("caller", "no_media", outcome="abandoned")
                return self.record
            self._started = self._last_activity = self.clock()
            self._notify(StateNotice("connected", call_id=self.info.call_id, asr=self.asr_mode != "dtmf"))
            await self.listener.open()  # the recogniser side gets ready while the greeting plays
            self._tasks = [
                asyncio.create_task(self.playout.run(), name=f"playout-{self.info.call_id}"),
                asyncio.create_task(self._inbound(), name=f"inbound-{self.info.call_id}"),
                asyncio.create_task(self._brain(), name=f"brain-{self.info.call_id}"),
                asyncio.create_task(self._ticker(), name=f"ticker-{self.info.call_id}"),
            ]
            for t in self._tasks:
                t.add_done_callback(self._task_died)
            await self._done.wait()
        finally:
            await self._teardown()
            call_id_var.reset(token)
        return self.record

    def request_end(self, reason: str) -> None:
        """Ask the call to end politely (shutdown, max length): the bot says goodbye, then hangs up."""
        if self._end_requested or self._done.is_set():
            return
        self._end_requested = True
        self._interrupt(force=True)
        self._inputs.put_nowait(_Input("end", text=reason))
        self._grace = asyncio.get_running_loop().call_later(self.opts.end_grace_s, self._finish, "system", reason)

    def hangup_now(self, by: str = "system", reason: str = "") -> None:
        """End the call without a goodbye (transport gone, forced shutdown)."""
        self._finish(by, reason)

    def set_outcome(self, outcome: str) -> None:
        """The outcome if the call ends now ("" clears it)."""
        self._outcome = outcome

    @property
    def done(self) -> bool:
        return self._done.is_set()

    async def say(self, text: str, prompt_id: str | None = None) -> None:
        """Speak a line outside the dialogue (transfer hooks) and wait until it was played."""
        self._notify(TranscriptNotice("bot", text, True, "system"))
        await self.speak(BotReply(segments=[Segment(text, prompt_id)], barge_in=False), kind="system", wait=True)

    # --- inbound -------------------------------------------------------------------------------------------
    async def _inbound(self) -> None:
        while not self._done.is_set():
            ev = await self.port.recv()
            if isinstance(ev, AudioFrame):
                await self._on_audio(ev)
            elif isinstance(ev, DtmfDigits):
                self._on_dtmf(ev)
            elif isinstance(ev, Transcript):
                self._references.append(ev)  # fixture replay: reference text for the next utterance
            elif isinstance(ev, Hangup):
                self._finish(ev.by or "caller", ev.reason or f"{ev.by or 'caller'}_hangup")
                return

    async def _on_audio(self, frame: AudioFrame) -> None:
        if self.recorder is not None:
            self.recorder.caller(frame)
        if self.caller_tap is not None:
            self.caller_tap(frame)
            return
        self.listener.bot_speaking = self.voice.talking()  # the one place the listener learns it
        received, rx = self.clock(), frame.meta.get("rx_at")
        frame = self._to_listener(frame)
        self._arrivals.add(frame, received if rx is None else rx, received, self.clock())
        for ev in await self.listener.push(frame):
            self._on_listener_event(ev)

    def _on_listener_event(self, ev: ListenerEvent) -> None:
        now = self.clock()
        if isinstance(ev, SpeechStarted):
            self._caller_speaking = True
            self._last_activity = now
            cur = self.voice.current
            self._utt_overlapped = self.voice.talking() and cur is not None and cur.reply.barge_in
            self._utt_long = False
            self._open_timing = TurnTiming()
            self._notify(StateNotice("caller_speaking"))
        elif isinstance(ev, BargeIn):
            self._utt_long = True
            if self._interrupt():
                self.barge_ins.append((ev.at, self.clock()))
        elif isinstance(ev, SpeechEnded):
            self._caller_speaking = False
            self._last_activity = now
            timing = self._open_timing or TurnTiming()
            self._arrivals.stamp(timing, ev)  # speech_end = arrival of the last voiced audio; vad_end = ev.at
            self._open_timing = timing
            if self.asr_mode != "asr" and self._references:
                ref = self._references.popleft()
                self._on_final(Transcript(ref.text, True, self.clock(), ref.confidence, source="reference"))
        elif isinstance(ev, Transcript):
            if not ev.final:
                self._notify(TranscriptNotice("caller", ev.text, False))
            else:
                self._on_final(ev)

    def _on_final(self, tr: Transcript) -> None:
        timing = self._open_timing or TurnTiming(speech_end=tr.at)
        self._open_timing = None
        timing.asr_final = tr.at
        text = tr.text.strip()
        self._last_activity = self.clock()
        if not text:
            return
        if self._utt_overlapped and not self._utt_long:
            # Short speech over the bot that did not interrupt it: a backchannel (嗯, 对) or a cough.
            self.record.extra["backchannels"] = int(self.record.extra.get("backchannels", 0)) + 1
            return
        self._notify(TranscriptNotice("caller", text, True))
        self._inputs.put_nowait(_Input("speech", text=text, confidence=tr.confidence, source=tr.source, timing=timing))

    def _on_dtmf(self, ev: DtmfDigits) -> None:
        now = self.clock()
        self._last_activity = now
        self._interrupt()  # a key press stops an interruptible prompt, like on any IVR
        self._notify(DtmfNotice(ev.digits))
        # Digits go to the dialogue one event at a time: it collects numbers until '#' itself.
        self._inputs.put_nowait(_Input("dtmf", text=ev.digits, source="dtmf", timing=TurnTiming(speech_end=ev.at or now)))

    # --- barge-in ------------------------------------------------------------------------------------------
    def _interrupt(self, force: bool = False) -> bool:
        """Stop the current reply now (if it may be interrupted); the dialogue learns what was played."""
        cut = self.voice.interrupt(force)
        if cut is None:
            return False
        cur, played = cut
        self._inputs.put_nowait(_Input("played", played=(cur.reply.reply_id, played)))
        if self.metrics is not None:
            self.metrics.barge_ins.inc()
        self._notify(StateNotice("interrupted"))
        return True

    # --- the brain -----------------------------------------------------------------------------------------
    async def _brain(self) -> None:
        start = TurnTiming(speech_end=self._started)
        reply = await self.dialog.start()
        start.asr_final = start.speech_end
        start.dialog_decision = self.clock()
        if self.asr_mode == "dtmf":
            log.info("call runs in DTMF mode (no speech model for %s)", self.info.language)
        await self._reply(reply, start, TurnInput("start"))
        while not self._done.is_set():
            item = await self._inputs.get()
            self._brain_busy = True
            try:
                await self._handle(item)
            finally:
                self._brain_busy = False

    async def _handle(self, item: _Input) -> None:
        if item.kind == "played":
            assert item.played is not None
            reply_id, played = item.played
            await self.dialog.played(reply_id, played.segments_played, played.fraction_of_last)
            return
        if item.kind == "end":
            self._dialog_ended = True
            await self.dialog.end(item.text)
            text, prompt_id = system_line(self.info.language, item.text)
            if text:
                await self.say(text, prompt_id)
            self._finish("system", item.text)
            return
        if self._end_requested:
            return
        self._interrupt()  # a new input while the bot still talks (a key press, a late transcript)
        secret = self.dialog.dialog.expects_secret  # the answer is a credential
        if item.kind == "speech":
            self._no_input_count = 0
            reply = await self.dialog.handle_text(item.text, item.confidence)
        elif item.kind == "dtmf":
            self._no_input_count = 0
            reply = await self.dialog.handle_dtmf(item.text)
        elif item.kind == "no_input":
            self._no_input_count += 1
            if self._no_input_count > self.opts.max_no_input + 1:  # backstop; the dialogue says goodbye first
                self._inputs.put_nowait(_Input("end", text="no_input"))
                return
            reply = await self.dialog.handle_no_input()
        else:
            return
        item.timing.dialog_decision = self.clock()
        if item.timing.asr_final is None:
            item.timing.asr_final = item.timing.speech_end
        await self._reply(reply, item.timing, TurnInput(
            item.kind, item.text, item.source, item.confidence if item.kind == "speech" else None, secret))

    async def _reply(self, reply: BotReply, timing: TurnTiming, inp: TurnInput) -> None:
        if not isinstance(reply, BotReply):
            log.error("dialogue returned %r instead of a BotReply", type(reply).__name__)
            self._finish("system", "error", outcome="failed")
            return
        turn = self.turns.write(inp, reply)
        self._expect = reply.expect
        self.listener.expectation = Expectation.for_reply(reply.expect, reply.state)  # endpointing (issue 13)
        if reply.segments:
            self._notify(TranscriptNotice("bot", reply.text, True, reply.intent))
        await self.speak(reply, kind=inp.kind, timing=timing, turn=turn,
                         wait=reply.end_call or reply.transfer is not None)
        if reply.transfer is not None and not self._done.is_set():
            self.record.transfer_reason = reply.transfer.reason
            self._transferring = True  # a hang-up before the hook returns: abandoned in the hand-over
            outcome = await self.transfer_hook(CallControl(self), reply.transfer)
            self._transferring = False
            if outcome:
                self._outcome = outcome
            if outcome in ("transferred", "callback"):
                self._finish("bot", outcome)
                return
        if reply.end_call and not self._done.is_set():
            self._finish("bot", "bot_hangup")

    async def speak(self, reply: BotReply, *, kind: str, timing: TurnTiming | None = None,
                    turn: TurnRecord | None = None, wait: bool = False) -> None:
        """Start speaking ``reply`` (TTS -> playout); with ``wait`` return once it has been played."""
        cur = self.voice.start(reply, kind, timing, turn)
        if cur.task is None:
            return
        self._notify(StateNotice("bot_speaking"))
        if wait:
            await self.voice.until_played(cur, self._done)
            self._last_activity = self.clock()

    def _first_audio(self, cur: Speech) -> None:
        if cur.turn is not None:
            self.turns.first_audio(cur.turn, cur.timing)
        if self.metrics is not None:
            self.metrics.observe_turn(cur.timing, cur.input_kind)

    def _quiet(self, at: float) -> None:
        self._last_activity = at
        self._notify(StateNotice("listening"))

    def _bot_frame(self, frame: AudioFrame) -> None:
        if self.recorder is not None:
            self.recorder.bot(frame)

    # --- timers --------------------------------------------------------------------------------------------
    async def _ticker(self) -> None:
        while not self._done.is_set():
            await asyncio.sleep(self.opts.tick_s)
            now = self.clock()
            if now - self._started > self.opts.max_call_s and not self._end_requested:
                self.request_end("max_duration")
                continue
            if self.voice.talking() or self._caller_speaking or self._brain_busy or not self._inputs.empty():
                self._last_activity = now  # the silence clock starts once both sides are quiet
                continue
            if self._end_requested or self._expect == "none" or self.voice.spoken == 0:
                continue
            if now - self._last_activity >= self.opts.no_input_timeout_s:
                self._last_activity = now
                self._inputs.put_nowait(_Input("no_input", timing=TurnTiming(speech_end=now)))

    # --- ending --------------------------------------------------------------------------------------------
    def _finish(self, by: str, reason: str, outcome: str = "") -> None:
        if self._done.is_set():
            return
        self._ended_by, self._end_reason = by, reason
        if outcome:
            self._outcome = outcome
        self._done.set()

    def _task_died(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._done.is_set():
            return
        exc = task.exception()
        if exc is not None:
            log.error("call task %s failed: %s: %s", task.get_name(), type(exc).__name__, exc, exc_info=exc)
            self._finish("system", "error", outcome="failed")
        elif task.get_name().startswith("inbound"):
            self._finish("caller", "caller_hangup")

    async def _teardown(self) -> None:
        self._done.set()
        extra = self.voice.tasks()
        for t in self._tasks + extra:
            t.cancel()
        await asyncio.gather(*self._tasks, *extra, return_exceptions=True)
        self.playout.closed = True
        with contextlib.suppress(Exception):
            await self.listener.close()
        if self.recorder is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.recorder.close)
        if self._ended_by != "caller":
            with contextlib.suppress(Exception):
                await self.port.hangup(self._end_reason)
        if self._grace is not None:
            self._grace.cancel()
        if not self._dialog_ended:
            self._dialog_ended = True
            with contextlib.suppress(Exception):
                await self.dialog.end(self._end_reason or "hangup")
        self._notify(StateNotice("ended", reason=self._end_reason))
        self.record.ended_at = datetime.now(UTC)
        outcome = self.turns.finish(self.dialog.dialog, Ending(
            self._ended_by, self._end_reason, self._outcome, self._transferring))
        self.record.extra["playout_stalls"] = self.playout.stalls
        if self.metrics is not None:
            self.metrics.calls.labels(self.info.channel, outcome).inc()
            if self.playout.stalls:
                self.metrics.playout_stalls.inc(self.playout.stalls)
        await save_record(self.store, self.record)

    def _notify(self, notice: Notice) -> None:
        tell(self.port, notice)
