"""One call from answer to hang-up, for any transport: audio in -> listener -> dialogue -> TTS -> paced playout.

Tasks per call: the inbound reader (port -> listener events, DTMF, hang-up), the "brain" (one dialogue step at a
time, off the event loop), the speech feeder of the current reply (TTS -> playout), the playout clock and a
ticker (no-input reprompts, maximum call length). Barge-in is handled in the inbound reader itself, so the bot
stops within one audio frame of the listener's decision. Every turn's :class:`~ivr.events.TurnTiming` is stamped
hop by hop and kept in the call record.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ivr.audio.frames import AudioFrame
from ivr.audio.resample import Resampler
from ivr.call.metrics import CallMetrics
from ivr.call.parts import DialogRunner, close_listener
from ivr.call.playout import Played, Playout, Tag
from ivr.call.ports import CallPort
from ivr.call.recorder import StereoRecorder, recording_path
from ivr.config import Settings
from ivr.dialog.types import BotReply, TransferRequest
from ivr.events import BargeIn, DtmfDigits, Hangup, SpeechEnded, SpeechStarted, Transcript, TurnTiming
from ivr.log import call_id_var
from ivr.privacy import mask_phone, mask_secret
from ivr.services.records.masking import caller_key
from ivr.services.records.model import CallRecord, TurnRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionOptions:
    """Timers and switches of one call (defaults follow :class:`ivr.config.Settings`)."""

    no_input_timeout_s: float = 7.0
    max_no_input: int = 3
    max_call_s: float = 900.0
    end_grace_s: float = 20.0  # a goodbye may take this long before the line is cut anyway
    connect_timeout_s: float = 20.0  # transports with a ready() (WebRTC) must carry media within this
    record_audio: bool = False
    recordings_dir: Path | None = None
    caller_key_secret: str = ""
    tick_s: float = 0.1

    @classmethod
    def from_settings(cls, s: Settings) -> SessionOptions:
        return cls(
            no_input_timeout_s=s.no_input_timeout_s, max_no_input=s.max_no_input, max_call_s=s.max_call_s,
            record_audio=s.record_calls, recordings_dir=s.data_dir / "recordings", caller_key_secret=s.secret_key,
        )


class CallControl:
    """What a transfer hook may do with the call: speak, play audio, listen to the caller, note turns."""

    def __init__(self, session: CallSession) -> None:
        self._s = session

    @property
    def call_id(self) -> str:
        return self._s.info.call_id

    @property
    def record(self) -> CallRecord:
        return self._s.record

    @property
    def dialog(self) -> Any:
        return self._s.dialog.dialog

    @property
    def port(self) -> CallPort:
        return self._s.port

    async def say(self, text: str, prompt_id: str | None = None) -> None:
        """Speak text to the caller and wait until it has been played."""
        await self._s.say(text, prompt_id)

    def play(self, audio: AudioFrame) -> None:
        """Queue raw audio (hold music, the agent's voice) at the call's sample rate."""
        self._s.playout.enqueue(audio, reply_id=-1)

    def flush(self) -> None:
        """Drop queued audio to the caller (hold music before the agent's voice)."""
        self._s.playout.flush()

    @property
    def rate(self) -> int:
        """Sample rate of the caller's line (audio for :meth:`play` must be at this rate)."""
        return self._s.rate

    @property
    def queued_seconds(self) -> float:
        """Audio queued to the caller and not yet played."""
        return self._s.playout.queued_seconds

    def tap_caller(self, sink: Callable[[AudioFrame], None] | None) -> None:
        """Route the caller's audio to ``sink`` (an agent leg) and pause the bot's listening; None restores."""
        self._s.caller_tap = sink

    async def call_dialog(self, method: str, *args: Any) -> Any:
        """Call a dialogue method off the loop, serialised with the session's own calls."""
        return await self._s.dialog.call(method, *args)

    async def run_blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run blocking work (DB, shop) in the session's worker pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._s.dialog.executor, lambda: fn(*args))

    async def hangup(self, reason: str = "transferred") -> None:
        self._s.hangup_now("bot", reason)

    def set_outcome(self, outcome: str) -> None:
        """The outcome if the call ends now (e.g. "transferred" once a human has the caller)."""
        self._s._outcome = outcome

    @property
    def ended(self) -> bool:
        """True once either side has hung up (a hook should stop what it is doing)."""
        return self._s.done


TransferHook = Callable[[CallControl, TransferRequest], Awaitable[str]]
"""Returns the call's outcome after the attempt: "transferred" (a human has it; the session ends),
"callback" (a ticket was made), or "" (nothing happened, the conversation goes on)."""


async def default_transfer(control: CallControl, request: TransferRequest) -> str:
    """Blind transfer when the transport knows a target (``info.extra["transfer_target"]``); otherwise tell the
    caller nobody can take the call now and book a callback ticket with the dialogue's hand-off context.
    Warm transfer to agents (queue, whisper, bridge: ``ivr.call.warm_transfer``) replaces this hook."""
    target = control.port.info.extra.get("transfer_target", "")
    if target:
        try:
            if await control.port.transfer(target):
                return "transferred"
        except Exception as e:
            log.warning("transfer to %s failed: %s", target, e)
    text, prompt_id = system_line(control.port.info.language, "transfer_unavailable")
    if text:
        await control.say(text, prompt_id)
    return await book_callback(control, request, "no_agent")


async def book_callback(control: CallControl, request: TransferRequest, why: str, shop: Any = None) -> str:
    """Create a callback ticket with the whole hand-off context (transcript included) and read its number back
    digit by digit; returns "callback", or "" when no ticket could be made (the bot conversation goes on)."""
    dialog = control.dialog
    shop = shop if shop is not None else getattr(dialog, "shop", None)
    if shop is None:
        return ""
    ctx = getattr(dialog, "ctx", None)
    handoff = dict(request.handoff or {})
    try:
        ticket = await control.run_blocking(
            shop.create_ticket, "callback", f"callback ({why}): {request.reason}", getattr(ctx, "caller_id", ""),
            handoff.get("order_id") or (handoff.get("order") or {}).get("order_id") or None,
            {"call_id": control.call_id, "why": why, "handoff": handoff},
            f"{control.call_id}:transfer-callback",
        )
    except Exception as e:
        log.warning("callback ticket could not be created: %s", e)
        return ""
    ticket_id = getattr(ticket, "ticket_id", "")
    if not ticket_id:
        return ""
    control.record.extra["callback_ticket"] = ticket_id
    control.record.extra["callback_why"] = why
    from ivr.lang import get_pack

    lang = control.port.info.language
    text, _ = system_line(lang, "callback_booked", ticket=get_pack(lang).say_digits(ticket_id))
    if text:
        await control.say(text)
    return "callback"


def system_line(language: str, reason: str, **fields: Any) -> tuple[str, str | None]:
    """Caller-facing line for a session event (busy, shutdown, max_duration, transfer_unavailable, ...) from the
    language pack: ``call.<reason>`` if the pack has it, else a fitting general prompt; ("", None) if none.
    ``fields`` fill the prompt's placeholders."""
    from ivr.lang import PromptError, get_pack

    fallbacks = {
        "busy": ["call.busy", "ended"],
        "shutdown": ["call.shutdown", "goodbye"],
        "max_duration": ["call.max_duration", "goodbye"],
        "no_input": ["no_input.final", "goodbye"],
        "transfer_unavailable": ["call.transfer_unavailable"],
        "callback_booked": ["call.callback_booked", "oms.callback_done"],
    }
    try:
        pack = get_pack(language)
    except Exception:
        return "", None
    default = [f"call.{reason}"] if reason.startswith(("transfer_", "bridge_", "callback_")) else [
        f"call.{reason}", "goodbye"]
    for pid in fallbacks.get(reason, default):
        try:
            return pack.prompt(pid, **fields), pid
        except PromptError:
            continue
    return "", None


@dataclass
class _Input:
    kind: str  # "speech" | "dtmf" | "no_input" | "played" | "end"
    text: str = ""
    confidence: float = 1.0
    source: str = ""
    timing: TurnTiming = field(default_factory=TurnTiming)
    played: tuple[int, Played] | None = None


@dataclass
class _Speech:
    """The reply currently being spoken."""

    local_id: int
    reply: BotReply
    turn: TurnRecord | None
    timing: TurnTiming
    input_kind: str
    task: asyncio.Task | None = None
    first_sent: bool = False
    segments_total: int = 0


class CallSession:
    """Runs one call; :meth:`run` returns the finished :class:`CallRecord` (also saved to ``store``)."""

    def __init__(
        self,
        port: CallPort,
        *,
        dialog: Any,
        listener: Any,
        tts: Any,
        options: SessionOptions | None = None,
        asr_mode: str = "asr",
        executor: Executor | None = None,
        metrics: CallMetrics | None = None,
        store: Any = None,
        transfer_hook: TransferHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.port = port
        self.info = port.info
        self.rate = port.info.sample_rate
        self.opts = options or SessionOptions()
        self.dialog = DialogRunner(dialog, executor)
        self.listener = listener
        self.tts = tts
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
        self.playout = Playout(port.send_audio, self.rate, on_sent=self._on_sent, clock=clock)
        self.recorder: StereoRecorder | None = None
        self.timings: list[tuple[str, TurnTiming]] = []  # (input kind, timing) per turn, for benchmarks
        self.barge_ins: list[tuple[float, float]] = []  # (listener decision, playout flushed), monotonic
        self._inputs: asyncio.Queue[_Input] = asyncio.Queue()
        self._references: collections.deque[Transcript] = collections.deque()
        self._current: _Speech | None = None
        self._speech_seq = 0
        self._tasks: list[asyncio.Task] = []
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
        self._dtmf_keys = ""
        self._expect = "speech"
        self._inbound_resampler: Resampler | None = None
        self._listener_rate = getattr(listener, "sample_rate", self.rate)

    # --- public --------------------------------------------------------------------------------------------
    async def run(self) -> CallRecord:
        """Answer, converse until either side hangs up, tear down, and return the record."""
        token = call_id_var.set(self.info.call_id)
        try:
            if self.opts.record_audio and self.opts.recordings_dir is not None:
                path = recording_path(self.opts.recordings_dir, self.info.call_id)
                self.recorder = StereoRecorder(path, self.rate, clock=self.clock)
                self.record.recording_path = str(path)
            await self._save_async()
            ready = getattr(self.port, "ready", None)
            if ready is not None:  # e.g. WebRTC: do not talk before ICE/DTLS carry audio
                try:
                    ok = await asyncio.wait_for(ready(), self.opts.connect_timeout_s)
                except TimeoutError:
                    ok = False
                if not ok:
                    self._finish("caller", "no_media", outcome="abandoned")
                    return self.record
                self._started = self._last_activity = self.clock()
            self._notify({"type": "state", "state": "connected", "call_id": self.info.call_id,
                          "asr": self.asr_mode != "dtmf"})
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

    @property
    def done(self) -> bool:
        return self._done.is_set()

    async def say(self, text: str, prompt_id: str | None = None) -> None:
        """Speak a line outside the dialogue (transfer hooks) and wait until it was played."""
        from ivr.dialog.types import Segment

        self._notify({"type": "transcript", "who": "bot", "text": text, "final": True, "intent": "system"})
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
        if frame.sample_rate != self._listener_rate:
            if self._inbound_resampler is None or self._inbound_resampler.in_rate != frame.sample_rate:
                self._inbound_resampler = Resampler(frame.sample_rate, self._listener_rate)
            frame = self._inbound_resampler.process(frame)
        self.listener.bot_speaking = self._bot_talking()
        for ev in await self.listener.push(frame):
            self._on_listener_event(ev)

    def _on_listener_event(self, ev: Any) -> None:
        now = self.clock()
        if isinstance(ev, SpeechStarted):
            self._caller_speaking = True
            self._last_activity = now
            cur = self._current
            self._utt_overlapped = self._bot_talking() and cur is not None and cur.reply.barge_in
            self._utt_long = False
            self._open_timing = TurnTiming()
            self._notify({"type": "state", "state": "caller_speaking"})
        elif isinstance(ev, BargeIn):
            self._utt_long = True
            if self._interrupt():
                self.barge_ins.append((ev.at, self.clock()))
        elif isinstance(ev, SpeechEnded):
            self._caller_speaking = False
            self._last_activity = now
            timing = self._open_timing or TurnTiming()
            timing.speech_end = ev.at
            self._open_timing = timing
            if self.asr_mode != "asr" and self._references:
                ref = self._references.popleft()
                self._on_final(Transcript(ref.text, True, self.clock(), ref.confidence, source="reference"))
        elif isinstance(ev, Transcript):
            if not ev.final:
                self._notify({"type": "transcript", "who": "caller", "text": ev.text, "final": False})
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
        self._notify({"type": "transcript", "who": "caller", "text": text, "final": True})
        self._inputs.put_nowait(_Input("speech", text=text, confidence=tr.confidence, source=tr.source, timing=timing))

    def _on_dtmf(self, ev: DtmfDigits) -> None:
        now = self.clock()
        self._last_activity = now
        self._interrupt()  # a key press stops an interruptible prompt, like on any IVR
        self._notify({"type": "dtmf", "digits": ev.digits})
        # Digits go to the dialogue one event at a time: it collects numbers until '#' itself.
        self._inputs.put_nowait(_Input("dtmf", text=ev.digits, source="dtmf", timing=TurnTiming(speech_end=ev.at or now)))

    # --- barge-in ------------------------------------------------------------------------------------------
    def _bot_talking(self) -> bool:
        cur = self._current
        return self.playout.busy or (cur is not None and cur.task is not None and not cur.task.done())

    def _interrupt(self, force: bool = False) -> bool:
        """Stop the current reply now (if it may be interrupted); the dialogue learns what was played."""
        cur = self._current
        if cur is None or not self._bot_talking() or (not cur.reply.barge_in and not force):
            return False
        if cur.task is not None and not cur.task.done():
            cur.task.cancel()
        played = self.playout.flush()
        flush = getattr(self.port, "flush", None)
        if flush is not None:
            with contextlib.suppress(Exception):
                flush()
        self.listener.bot_speaking = False
        if cur.turn is not None:
            cur.turn.barged_in = True
            cur.turn.segments_played = played.segments_played if played.reply_id == cur.local_id else 0
        if played.reply_id != cur.local_id:
            played = Played(cur.local_id, 0, 0.0, played.dropped_frames)
        self._inputs.put_nowait(_Input("played", played=(cur.reply.reply_id, played)))
        if self.metrics is not None:
            self.metrics.barge_ins.inc()
        self._notify({"type": "state", "state": "interrupted"})
        self._current = None
        return True

    # --- the brain -----------------------------------------------------------------------------------------
    async def _brain(self) -> None:
        start = TurnTiming(speech_end=self._started)
        reply = await self.dialog.call("start")
        start.asr_final = start.speech_end
        start.dialog_decision = self.clock()
        if self.asr_mode == "dtmf":
            log.info("call runs in DTMF mode (no speech model for %s)", self.info.language)
        await self._reply(reply, start, "start", TurnRecordInput("start"))
        while not self._done.is_set():
            item = await self._inputs.get()
            self._brain_busy = True
            try:
                await self._handle(item)
            finally:
                self._brain_busy = False

    async def _handle(self, item: _Input) -> None:
        if item.kind == "played":
            reply_id, played = item.played  # type: ignore[misc]
            await self.dialog.call("played", reply_id, played.segments_played, played.fraction_of_last)
            return
        if item.kind == "end":
            self._dialog_ended = True
            await self.dialog.call("end", item.text)
            text, prompt_id = system_line(self.info.language, item.text)
            if text:
                await self.say(text, prompt_id)
            self._finish("system", item.text)
            return
        if self._end_requested:
            return
        self._interrupt()  # a new input while the bot still talks (a key press, a late transcript)
        secret = bool(getattr(self.dialog.dialog, "expects_secret", False))  # the answer is a credential
        if item.kind == "speech":
            self._no_input_count = 0
            reply = await self.dialog.call("handle_text", item.text, item.confidence)
        elif item.kind == "dtmf":
            self._no_input_count = 0
            reply = await self.dialog.call("handle_dtmf", item.text)
        elif item.kind == "no_input":
            self._no_input_count += 1
            if self._no_input_count > self.opts.max_no_input + 1:  # backstop; the dialogue says goodbye first
                self._inputs.put_nowait(_Input("end", text="no_input"))
                return
            reply = await self.dialog.call("handle_no_input")
        else:
            return
        item.timing.dialog_decision = self.clock()
        if item.timing.asr_final is None:
            item.timing.asr_final = item.timing.speech_end
        rec = TurnRecordInput(item.kind, item.text, item.source, item.confidence if item.kind == "speech" else None,
                              secret)
        await self._reply(reply, item.timing, item.kind, rec)

    async def _reply(self, reply: Any, timing: TurnTiming, kind: str, rec: TurnRecordInput) -> None:
        if not isinstance(reply, BotReply):
            log.error("dialogue returned %r instead of a BotReply", type(reply).__name__)
            self._finish("system", "error", outcome="failed")
            return
        silent = not reply.segments and not reply.actions and not reply.end_call and reply.transfer is None
        if rec.kind == "dtmf":  # keys the dialogue is still collecting (an order number) join the next turn
            keys, self._dtmf_keys = self._dtmf_keys + rec.text, ""
            if silent:
                self._dtmf_keys = keys
            rec = TurnRecordInput(rec.kind, keys, rec.source, rec.asr_confidence, rec.secret)
        turn = None if silent else self.record.add_turn(
            rec.kind, caller_text=mask_secret(rec.text) if rec.secret else rec.text, input_source=rec.source, asr_confidence=rec.asr_confidence,
            bot_text=reply.text, intent=reply.intent, confidence=reply.confidence, slots=dict(reply.slots),
            actions=list(reply.actions), sentiment=reply.sentiment, state=reply.state,
        )
        self._expect = reply.expect
        if reply.segments:
            self._notify({"type": "transcript", "who": "bot", "text": reply.text, "final": True,
                          "intent": reply.intent})
        await self.speak(reply, kind=kind, timing=timing, turn=turn, wait=reply.end_call or reply.transfer is not None)
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
        self._speech_seq += 1
        cur = _Speech(self._speech_seq, reply, turn, timing or TurnTiming(), kind, segments_total=len(reply.segments))
        self._current = cur
        self.timings.append((kind, cur.timing))
        if not reply.segments:
            return
        cur.task = asyncio.create_task(self._feed(cur), name=f"speech-{self.info.call_id}-{cur.local_id}")
        self._notify({"type": "state", "state": "bot_speaking"})
        if wait:
            try:
                await asyncio.shield(cur.task)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # the call is being torn down: not just this reply cut short by a barge-in
            while self._current is cur and self.playout.busy and not self._done.is_set():
                await self.playout.wait_idle()
            if self._current is cur:
                self._current = None
            self._last_activity = self.clock()

    async def _feed(self, cur: _Speech) -> None:
        first = True
        for i, seg in enumerate(cur.reply.segments):
            try:
                async for audio in self.tts.stream(seg.text, self.rate, prompt_id=seg.prompt_id):
                    if audio.sample_rate != self.rate:
                        from ivr.audio.resample import resample

                        audio = resample(audio, self.rate)
                    self.playout.enqueue(audio, cur.local_id, i)
                    self.listener.bot_speaking = True
                    if first:
                        cur.timing.tts_first_audio_queued = self.clock()
                        first = False
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a segment TTS cannot say is skipped, not the whole call
                log.warning("TTS failed for a segment: %s", e)
            self.playout.end_of_audio()

    def _on_sent(self, frame: AudioFrame, tag: Tag | None, sent_at: float) -> None:
        if self.recorder is not None:
            self.recorder.bot(frame)
        cur = self._current
        if tag is not None and cur is not None and tag.reply_id == cur.local_id and not cur.first_sent:
            cur.first_sent = True
            cur.timing.first_audio_sent = sent_at
            if cur.turn is not None:
                lat = cur.timing.latency_ms()
                cur.turn.latency_ms = None if lat is None else round(lat, 1)
                cur.turn.timing = _relative(cur.timing)
            if self.metrics is not None:
                self.metrics.observe_turn(cur.timing, cur.input_kind)
        if tag is None and cur is not None and cur.task is not None and cur.task.done() and not self.playout.busy:
            self._current = None
            self._last_activity = sent_at
            self.listener.bot_speaking = False
            self._notify({"type": "state", "state": "listening"})

    # --- timers --------------------------------------------------------------------------------------------
    async def _ticker(self) -> None:
        while not self._done.is_set():
            await asyncio.sleep(self.opts.tick_s)
            now = self.clock()
            if now - self._started > self.opts.max_call_s and not self._end_requested:
                self.request_end("max_duration")
                continue
            if self._bot_talking() or self._caller_speaking or self._brain_busy or not self._inputs.empty():
                self._last_activity = now  # the silence clock starts once both sides are quiet
                continue
            if self._end_requested or self._expect == "none" or self._speech_seq == 0:
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

    def _task_died(self, task: asyncio.Task) -> None:
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
        cur = self._current
        extra = [cur.task] if cur is not None and cur.task is not None else []
        for t in self._tasks + extra:
            t.cancel()
        await asyncio.gather(*self._tasks, *extra, return_exceptions=True)
        self.playout.closed = True
        with contextlib.suppress(Exception):
            await close_listener(self.listener)
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
                await self.dialog.call("end", self._end_reason or "hangup")
        self._notify({"type": "state", "state": "ended", "reason": self._end_reason})
        self.record.ended_at = datetime.now(UTC)
        self.record.ended_by = self._ended_by or "system"
        self.record.end_reason = self._end_reason
        self.record.outcome = self._decide_outcome()
        self.record.extra["playout_stalls"] = self.playout.stalls
        if self.metrics is not None:
            self.metrics.calls.labels(self.info.channel, self.record.outcome).inc()
            if self.playout.stalls:
                self.metrics.playout_stalls.inc(self.playout.stalls)
        await self._save_async()

    def _decide_outcome(self) -> str:
        d = self.dialog.dialog
        csat = getattr(d, "csat", None)
        if isinstance(csat, int):
            self.record.csat = csat
        feedback = getattr(d, "feedback", None)
        if feedback:
            self.record.feedback = "; ".join(str(f) for f in feedback)
        if self._outcome:
            return self._outcome
        if self._transferring:
            self.record.extra["abandoned_in_transfer"] = True
            return "abandoned"
        if self._end_reason == "error":
            return "failed"
        said = str(getattr(d, "outcome", "") or "")
        if said in ("transferred", "callback"):
            return said
        served = bool(getattr(getattr(d, "ctx", None), "served", False)) or said == "resolved" or any(
            a for t in self.record.turns for a in t.actions if a not in ("end_call", "no_match", "keypad_offered"))
        return "self_served" if served else "abandoned"

    async def _save_async(self) -> None:
        if self.store is None:
            return
        try:
            # One writer thread for all calls (SQLite serialises writes anyway; fewer GIL-hungry threads keep
            # every call's audio clock on time).
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(_record_writer(), self.store.save, self.record)
        except Exception as e:  # records must never break a call
            log.error("cannot save call record: %s", e)

    def _notify(self, event: dict) -> None:
        notify = getattr(self.port, "notify", None)
        if notify is None:
            return
        try:
            res = notify(event)
            if asyncio.iscoroutine(res):
                t = asyncio.ensure_future(res)
                t.add_done_callback(lambda f: f.cancelled() or f.exception())
        except Exception as e:
            log.debug("notify failed: %s", e)


_writer: ThreadPoolExecutor | None = None


def _record_writer() -> ThreadPoolExecutor:
    global _writer
    if _writer is None:
        _writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivr-records")
    return _writer


@dataclass(frozen=True, slots=True)
class TurnRecordInput:
    kind: str
    text: str = ""
    source: str = ""
    asr_confidence: float | None = None
    secret: bool = False  # the answer to a verification question: digits masked in the record


def _relative(t: TurnTiming) -> dict[str, float | None]:
    """Timing as ms after the turn's reference point (speech end / key press / answer)."""
    ref = t.speech_end
    out: dict[str, float | None] = {}
    for k, v in t.as_dict().items():
        out[k] = None if v is None or ref is None else round((v - ref) * 1000.0, 1)
    return out
