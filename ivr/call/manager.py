"""All calls of one process: admission (capacity), the shared parts (shop, ASR engine, TTS, records), shutdown.

Transports hand calls here. WebRTC reserves a slot before answering the offer (so a refusal is an HTTP 503);
SIP reserves on INVITE (refusal = 503 + Retry-After) and then runs the call::

    slot = manager.reserve()                 # raises CallRefused when full or shutting down
    record = await manager.run_call(port, slot)

``run_call(port)`` without a slot reserves itself and, when refused, speaks a short apology on the port (audio
transports) and hangs up.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ivr.audio.frames import AudioFrame, frames_of
from ivr.call.metrics import CallMetrics
from ivr.call.options import SessionOptions
from ivr.call.parts import LISTENER_RATE, DialogLike, TtsLike
from ivr.call.ports import CallInfo, CallPort
from ivr.call.prompts import system_line
from ivr.call.session import CallSession
from ivr.call.transfer import TransferHook
from ivr.call.turns import RecordStoreLike
from ivr.call.warm_transfer import WarmTransfer
from ivr.config import Settings
from ivr.services.records import CallRecord
from ivr.services.shop.api import ShopService

if TYPE_CHECKING:
    from ivr.asr.engine import AsrEngine
    from ivr.asr.grammar import GrammarSet
    from ivr.asr.vad import VadOptions
    from ivr.services.agents.desk import AgentDesk

log = logging.getLogger(__name__)


class DialogFactory(Protocol):
    """Makes the dialogue of one call (``ivr.wiring.new_dialog`` over the service's shop)."""

    def __call__(self, info: CallInfo, *, asr_available: bool) -> DialogLike: ...


class CallRefused(Exception):
    """No call can be taken now. ``reason``: "busy" (at capacity) or "shutting_down"."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class CallSlot:
    """A reserved place for one call; release it if the call never starts (``run_call`` releases it otherwise)."""

    call_id: str
    manager: CallManager
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.manager._reserved.discard(self.call_id)


@dataclass
class CallParts:
    """The shared, heavy parts every call uses (built once per process)."""

    shop: ShopService
    tts: TtsLike
    asr_engine: AsrEngine | None  # None: no speech model for the language -> calls run in DTMF mode
    store: RecordStoreLike | None
    dialog_factory: DialogFactory
    vad_options: VadOptions | None = None
    extra: dict[str, object] = field(default_factory=dict)


class CallManager:
    """Admits, runs and ends calls; see the module docstring."""

    def __init__(self, settings: Settings, parts: CallParts, *, metrics: CallMetrics | None = None,
                 transfer_hook: TransferHook | None = None, options: SessionOptions | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock  # the sessions' clock (tests: the loop's, so a scaled loop plays calls faster)
        self.parts = parts
        self.metrics = metrics or CallMetrics()
        self.metrics.capacity.set(settings.max_calls)
        self.transfer_hook = transfer_hook
        self.options = options or SessionOptions.from_settings(settings)
        self.sessions: dict[str, CallSession] = {}
        self.records: dict[str, CallRecord] = {}  # last finished records (bounded), for tests and the API
        self.accepting = True
        self._reserved: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self._executor = ThreadPoolExecutor(max_workers=max(2, settings.asr_workers), thread_name_prefix="ivr-dialog")

    # --- construction --------------------------------------------------------------------------------------
    @property
    def desk(self) -> AgentDesk | None:
        """The agents' presence and queue when calls go to humans by warm transfer (else None)."""
        hook = self.transfer_hook
        return hook.desk if isinstance(hook, WarmTransfer) else None

    @property
    def asr_available(self) -> bool:
        return self.parts.asr_engine is not None

    async def start(self) -> None:
        """Warm the heavy parts so the first caller does not wait (model load, recogniser pool, NLU)."""
        eng = self.parts.asr_engine
        if eng is not None:
            await eng.warm_up()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):
            await loop.run_in_executor(self._executor, self._warm_dialog)
        # The NLU, tokenizer dictionary and models are millions of long-lived objects; a full garbage collection
        # walking them stalls the event loop ~100 ms (measured: gaps in every call's audio at 8 calls). Move
        # everything alive now out of the collector's way; later garbage is collected as usual.
        gc.collect()
        gc.freeze()
        # Worker threads (dialogue, NLU, records) hold the GIL for up to the switch interval each time the loop
        # thread wants it back; at Python's 5 ms several of them in a row delayed a call's 20 ms audio clock by
        # ~100 ms once (8 concurrent calls, all keying at once). 1 ms bounds that wait for a small throughput cost.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))

    def _warm_dialog(self) -> None:
        self.parts.dialog_factory(CallInfo("warmup", "replay"), asr_available=self.asr_available).start()

    # --- admission -----------------------------------------------------------------------------------------
    @property
    def active(self) -> int:
        """Calls running or reserved."""
        return len(self._reserved)

    def reserve(self, call_id: str | None = None) -> CallSlot:
        """Hold a place for a call or raise :class:`CallRefused` (shutting down, or ``max_calls`` reached)."""
        if not self.accepting:
            self.metrics.refused.labels("shutting_down").inc()
            raise CallRefused("shutting_down", "the service is shutting down; please call again shortly")
        if len(self._reserved) >= self.settings.max_calls:
            self.metrics.refused.labels("busy").inc()
            raise CallRefused("busy", f"all {self.settings.max_calls} lines are busy; please try again in a minute")
        cid = call_id or uuid.uuid4().hex[:12]
        self._reserved.add(cid)
        return CallSlot(cid, self)

    # --- running -------------------------------------------------------------------------------------------
    async def new_session(self, port: CallPort, *, asr_mode: str | None = None) -> CallSession:
        """A session for ``port`` with the shared parts. ``asr_mode``: "asr" (default when a model is
        installed), "dtmf" (keypad only) or "reference" (fixture replay: reference texts instead of ASR).
        The dialogue is built in the worker pool (it reads its data files), not on the event loop."""
        from ivr.asr.listener import Listener
        from ivr.asr.vad import VadOptions

        mode = asr_mode or ("asr" if self.asr_available else "dtmf")
        if asr_mode is None and mode == "asr" and self.parts.asr_engine.overload.overloaded:
            # recognition is behind the callers talking now: this caller gets the keypad menu instead of
            # adding decoding work that would make everyone's replies late (ivr/asr/overload.py)
            mode = "dtmf"
            self.metrics.degraded.labels("asr_overload").inc()
            log.warning("call %s answered in keypad mode: speech recognition is behind (overload guard)",
                        port.info.call_id)
        engine = self.parts.asr_engine if mode == "asr" else None
        vad = self.parts.vad_options or VadOptions.from_settings(self.settings)
        listener = Listener(LISTENER_RATE, vad, engine, grammars=self._grammars(engine, port.info.language),
                            language=port.info.language)
        loop = asyncio.get_running_loop()
        dialog = await loop.run_in_executor(
            self._executor, lambda: self.parts.dialog_factory(port.info, asr_available=mode != "dtmf"))
        return CallSession(
            port, dialog=dialog, listener=listener, tts=self.parts.tts, options=self.options, asr_mode=mode,
            executor=self._executor, metrics=self.metrics, store=self.parts.store, transfer_hook=self.transfer_hook,
            clock=self.clock,
        )

    def _grammars(self, engine: AsrEngine | None, language: str) -> GrammarSet | None:
        """The language pack's grammar lists when the engine's model speaks the call's language and takes
        runtime grammars (small Vosk models); else None (free speech)."""
        if engine is None or not self.settings.asr_grammar:
            return None
        from ivr.asr.grammar import GrammarSet, supports_grammar
        from ivr.asr.models import same_language
        from ivr.lang import get_pack

        if not same_language(engine.language, language) or not supports_grammar(engine.model_dir):
            return None
        try:
            return GrammarSet.for_pack(get_pack(language))
        except Exception:  # a broken word list must not take calls down: free speech, said once per call
            log.exception("ASR grammar lists of %s unusable; recognising free speech", language)
            return None

    async def run_call(self, port: CallPort, slot: CallSlot | None = None, *,
                       asr_mode: str | None = None) -> CallRecord | None:
        """Run one call to its end and return its record. Without a slot one is reserved; if the service is
        full or shutting down the caller hears a short apology and None is returned."""
        if slot is None:
            try:
                slot = self.reserve(port.info.call_id)
            except CallRefused as e:
                await self.refuse(port, e.reason)
                return None
        channel = port.info.channel
        session = None
        me = asyncio.current_task()  # awaited directly (not via start_call): shutdown() must wait for it too
        tracked = me is not None and me not in self._tasks
        if tracked:
            self._tasks.add(me)
        try:
            session = await self.new_session(port, asr_mode=asr_mode)
            self.sessions[port.info.call_id] = session
            self.metrics.active_calls.labels(channel).inc()
            record = await session.run()
            self.records[record.call_id] = record
            while len(self.records) > 200:
                self.records.pop(next(iter(self.records)))
            return record
        finally:
            if tracked:
                self._tasks.discard(me)
            if session is not None:
                self.metrics.active_calls.labels(channel).dec()
            self.sessions.pop(port.info.call_id, None)
            slot.release()

    def start_call(self, port: CallPort, slot: CallSlot, *, asr_mode: str | None = None) -> asyncio.Task:
        """Run the call in the background (the task is tracked for shutdown)."""
        task = asyncio.create_task(self.run_call(port, slot, asr_mode=asr_mode), name=f"call-{port.info.call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._call_done)
        return task

    def _call_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("call ended with an error: %s", task.exception())

    async def refuse(self, port: CallPort, reason: str) -> None:
        """Tell an audio caller the line is busy (paced, about 3 s at most) and hang up."""
        text, prompt_id = system_line(port.info.language, reason if reason != "shutting_down" else "shutdown")
        try:
            if text and self.parts.tts is not None:
                audio = await self.parts.tts.synthesize(text, port.info.sample_rate, prompt_id=prompt_id)
                loop = asyncio.get_running_loop()
                t0 = loop.time()
                for i, f in enumerate(frames_of(AudioFrame(audio.pcm, audio.sample_rate))):
                    if i * 0.02 > 6.0:
                        break
                    await asyncio.sleep(max(0.0, t0 + i * 0.02 - loop.time()))
                    await port.send_audio(f)
        except Exception as e:
            log.warning("could not play the busy message: %s", e)
        finally:
            with contextlib.suppress(Exception):
                await port.hangup(reason)

    def hangup(self, call_id: str, reason: str = "caller_hangup") -> bool:
        """End a running call as if the caller hung up (HTTP DELETE); False if unknown."""
        s = self.sessions.get(call_id)
        if s is None:
            return False
        s.hangup_now("caller", reason)
        return True

    async def shutdown(self, grace_s: float = 20.0) -> None:
        """Stop taking calls; active callers hear a goodbye, then the line is closed (after ``grace_s`` at most)."""
        self.accepting = False
        for s in list(self.sessions.values()):
            s.request_end("shutdown")
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace_s)
            for s in list(self.sessions.values()):
                s.hangup_now("system", "shutdown")
            if pending:
                await asyncio.wait(pending, timeout=5)
        self._executor.shutdown(wait=False, cancel_futures=True)
        eng = self.parts.asr_engine
        if eng is not None:
            with contextlib.suppress(Exception):
                await eng.close()
