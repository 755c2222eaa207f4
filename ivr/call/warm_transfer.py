"""Warm transfer: the bot hands a caller to a human agent like a colleague would (a transfer hook of the session).

1. The dialogue has already told the caller it is transferring (and why, for anger: "优先转接"). Outside service
   hours, or with no agent signed in, the caller gets a callback ticket at once (step 5).
2. The caller joins the ACD queue (:class:`ivr.services.agents.desk.AgentDesk`) with the hand-off context, hears
   the queue position and expected wait, then hold audio, with a short reassurance every ``reassure_s``.
3. An agent's desktop rings with the context card; when the agent accepts, the desktop connects its own audio leg
   (WebRTC). The bot whispers the one-line summary to the agent only (``whisper``), then tells the caller they are
   connected and bridges the two: caller audio -> agent, agent audio -> caller. Both sides' speech is segmented (and
   recognised when a model is installed) and goes to the agent's screen and the call record as ``agent`` turns.
4. The agent hangs up (the call ends, outcome ``transferred``), or the caller does (the agent is told). If the agent's
   connection drops, the caller is told and put back at the head of the queue (at most ``max_requeues`` times).
5. Nobody answers within ``max_wait_s``: a callback ticket with the whole hand-off context (transcript included) is
   created and its number read back digit by digit. Nothing the caller said is lost.

The agent goes to wrap-up after the call; the disposition and note are filed through :func:`save_wrapup`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ivr.audio.frames import AudioFrame
from ivr.audio.resample import RateConverter
from ivr.call.hold import hold_audio
from ivr.call.parts import LISTENER_RATE, ListenerEvent, TtsLike
from ivr.call.playout import Playout
from ivr.call.ports import CallPort
from ivr.call.prompts import system_line
from ivr.call.transfer import CallControl, book_callback
from ivr.dialog.types import TransferRequest
from ivr.events import Hangup, SpeechEnded, Transcript
from ivr.privacy import mask_text
from ivr.services.agents.desk import AgentDesk, AgentState, Waiting
from ivr.services.shop.api import ShopService

if TYPE_CHECKING:
    from ivr.asr.engine import AsrEngine
    from ivr.asr.listener import Listener
    from ivr.asr.vad import VadOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WarmTransferOptions:
    """Behaviour of the hand-over (documented defaults)."""

    whisper: bool = True  # the agent hears the bot's summary before the caller is connected
    reassure_s: float = 30.0  # "still waiting" line this often while on hold
    max_requeues: int = 2  # agent connection drops before the caller is offered a callback instead
    whisper_max_s: float = 15.0


@dataclass
class Bridge:
    """One live caller-agent connection (so the desktop API can end it or read its transcript)."""

    call_id: str
    agent_id: str
    leg: CallPort  # the agent's audio connection
    context: dict[str, Any] = field(default_factory=dict)  # the hand-off card the agent accepted
    started: float = field(default_factory=time.monotonic)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    end_reason: str = ""
    transcript: list[dict[str, Any]] = field(default_factory=list)
    relaying: bool = False  # agent audio goes to the caller (after the whisper); before, it is read and dropped
    held: bool = False  # on hold: the caller hears hold audio, neither side hears the other
    hold_changed: asyncio.Event = field(default_factory=asyncio.Event)
    supervisors: list[Any] = field(default_factory=list)  # ivr.call.supervise.Supervision: listen/whisper/barge

    def hangup(self, reason: str = "agent_hangup") -> None:
        if not self.ended.is_set():
            self.end_reason = reason
            self.ended.set()

    def hold(self, held: bool) -> None:
        """Put the caller on hold (hold audio) or take them off it."""
        if held != self.held:
            self.held = held
            self.hold_changed.set()


class _Ear:
    """The recogniser of one side of a bridge (caller or agent), fed at its rate whatever the leg's rate."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.engine = listener.engine
        self._convert = RateConverter(listener.sample_rate)

    async def hear(self, frame: AudioFrame) -> list[ListenerEvent]:
        return await self.listener.push(self._convert(frame))

    async def close(self) -> None:
        await self.listener.close()


class WarmTransfer:
    """A ``TransferHook`` for :class:`~ivr.call.manager.CallManager` (see the module docstring)."""

    def __init__(self, desk: AgentDesk, *, tts: TtsLike, asr_engine: AsrEngine | None = None,
                 vad_options: VadOptions | None = None, shop: ShopService | None = None,
                 options: WarmTransferOptions | None = None) -> None:
        self.desk = desk
        self.tts = tts
        self.asr_engine = asr_engine
        self.vad_options = vad_options
        self.shop = shop
        self.options = options or WarmTransferOptions()
        self.bridges: dict[str, Bridge] = {}  # live
        self.recent: dict[str, Bridge] = {}  # ended, kept for the agent's wrap-up (last 100)

    async def __call__(self, control: CallControl, request: TransferRequest) -> str:
        lang = control.port.info.language
        if not self.desk.options.open_at():
            await self._say(control, "transfer_closed", hours=self.desk.options.service_hours)
            return await book_callback(control, request, "closed", self.shop)
        if self.desk.staffed() == 0:
            await self._say(control, "transfer_unavailable")
            return await book_callback(control, request, "no_agent", self.shop)
        handoff = dict(request.handoff or {})
        handoff.setdefault("call_id", control.call_id)
        vip = bool((handoff.get("order") or {}).get("vip"))
        priority = request.priority + (1 if vip else 0)
        w = self.desk.enqueue(control.call_id, skill=request.skill, priority=priority, handoff=handoff, vip=vip,
                              language=lang)
        control.record.extra["queue"] = {"skill": w.skill, "priority": priority, "waited_s": 0.0, "offers": 0}
        t0 = time.monotonic()
        try:
            while True:
                got = await self._wait(control, w)
                control.record.extra["queue"].update(waited_s=round(time.monotonic() - t0, 1), offers=w.offers)
                if got is None:
                    await self._say(control, "transfer_timeout")
                    return await book_callback(control, request, "timeout", self.shop)
                agent, leg = got
                result = await self._bridge(control, w, agent, leg, lang)
                if result != "agent_dropped":
                    return "transferred"
                control.set_outcome("")  # back in the queue: hanging up now abandons the hand-over
                if w.requeued >= self.options.max_requeues:
                    await self._say(control, "transfer_dropped_final")
                    return await book_callback(control, request, "agent_dropped", self.shop)
                await self._say(control, "transfer_dropped")
                w = self.desk.requeue(w)
        finally:
            self.desk.leave(w)

    # --- waiting -------------------------------------------------------------------------------------------
    async def _wait(self, control: CallControl, w: Waiting) -> tuple[AgentState, CallPort] | None:
        """Announce the place in the queue, play hold audio; the agent and its leg, or None after max_wait_s."""
        assert w.assigned is not None
        if not w.assigned.done():
            ahead = max(0, self.desk.position(w) - 1)
            minutes = max(1, round(self.desk.expected_wait_s(w) / 60))
            if ahead:
                await self._say(control, "transfer_queue", ahead=ahead, minutes=minutes)
            else:
                await self._say(control, "transfer_next")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.desk.options.max_wait_s
        next_reassure = loop.time() + self.options.reassure_s
        music = hold_audio(control.rate)
        while not w.assigned.done():
            now = loop.time()
            if control.ended:
                return None
            if now >= deadline:
                return None
            if now >= next_reassure:
                control.flush()
                await self._say(control, "transfer_hold")
                next_reassure = loop.time() + self.options.reassure_s
            if control.queued_seconds < 1.0:
                control.play(music)
            await asyncio.wait([w.assigned], timeout=0.5)  # neither a timeout nor a withdrawn place raises here
            if w.assigned.cancelled():
                return None
        control.flush()
        return w.assigned.result()

    # --- connected -----------------------------------------------------------------------------------------
    async def _bridge(self, control: CallControl, w: Waiting, agent: AgentState, leg: CallPort, lang: str) -> str:
        """Whisper, connect, relay audio both ways until one side ends; "agent_hangup", "caller_hangup" or
        "agent_dropped"."""
        bridge = Bridge(control.call_id, agent.agent_id, leg, context=w.handoff)
        self.bridges[control.call_id] = bridge
        control.record.agent_id = agent.agent_id
        control.record.extra.setdefault("agents", []).append(agent.username)
        leg_rate = leg.info.sample_rate
        agent_out = Playout(leg.send_audio, leg_rate)
        tasks: list[asyncio.Task] = [asyncio.create_task(agent_out.run(), name=f"agent-out-{control.call_id}")]
        to_agent = RateConverter(leg_rate)
        caller_frames: asyncio.Queue[AudioFrame] = asyncio.Queue(maxsize=500)
        result = "caller_hangup"
        try:
            if not await asyncio.wait_for(leg.ready(), 20):
                result = "agent_dropped"
                return result
            tasks.append(asyncio.create_task(self._agent_side(control, bridge, leg, lang)))
            control.set_outcome("transferred")  # an agent has accepted: whoever hangs up first, a human had it
            self.desk.publish(agent.agent_id, {"type": "connected", "call_id": control.call_id})
            if self.options.whisper and w.handoff.get("summary"):
                audio = await self.tts.synthesize(w.handoff["summary"], leg_rate, prompt_id=None)
                agent_out.enqueue(AudioFrame(audio.pcm, audio.sample_rate))
                agent_out.end_of_audio()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(agent_out.wait_idle(), self.options.whisper_max_s)

            def on_caller(frame: AudioFrame) -> None:
                if bridge.held:  # the agent does not hear a caller on hold
                    return
                out = to_agent(frame)
                for sup in list(bridge.supervisors):  # a supervisor hears it; a whisper or barge is mixed in
                    out = sup.caller_frame(frame, out)
                if agent_out.queued_seconds < 1.0:  # a stalled leg must not build up delay
                    agent_out.enqueue(out)
                if not caller_frames.full():
                    caller_frames.put_nowait(frame)

            control.tap_caller(on_caller)
            tasks.append(asyncio.create_task(self._caller_side(control, bridge, caller_frames, lang)))
            await self._say(control, "transfer_connected")  # the agent already hears the caller meanwhile
            bridge.relaying = True
            await self._connected(control, bridge)
            result = bridge.end_reason or "agent_hangup"
            return result
        finally:
            for sup in list(bridge.supervisors):  # their leave is in the record before the call hands it back
                sup.stop("call_ended")
            control.tap_caller(None)
            control.flush()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.bridges.pop(control.call_id, None)
            self.recent[control.call_id] = bridge
            while len(self.recent) > 100:
                self.recent.pop(next(iter(self.recent)))
            control.record.extra["agent_talk_s"] = round(time.monotonic() - bridge.started, 1)
            if result == "agent_dropped":
                self.desk.agent_dropped(agent.agent_id, control.call_id)
            else:
                if result == "caller_hangup":
                    self.desk.publish(agent.agent_id, {"type": "caller_hangup", "call_id": control.call_id})
                self.desk.call_ended(agent.agent_id, control.call_id, time.monotonic() - bridge.started)
            with contextlib.suppress(Exception):
                await leg.hangup(result)

    async def _agent_side(self, control: CallControl, bridge: Bridge, leg: CallPort, lang: str) -> None:
        """Agent audio -> caller (resampled to the call rate) and -> the agent-side listener."""
        to_caller = RateConverter(control.rate)
        listener = self._listener()
        try:
            while not bridge.ended.is_set():
                ev = await leg.recv()
                if isinstance(ev, Hangup):
                    deliberate = ev.reason in ("caller_hangup", "agent_hangup")  # the agent page's hang-up
                    bridge.hangup("agent_hangup" if deliberate else "agent_dropped")
                    return
                if not isinstance(ev, AudioFrame) or not bridge.relaying or bridge.held:
                    continue
                out = to_caller(ev)
                for sup in list(bridge.supervisors):  # a supervisor hears it; a barge is mixed in
                    out = sup.agent_frame(ev, out)
                if control.queued_seconds < 1.0:
                    control.play(out)
                if listener is not None:
                    await self._transcribe(control, bridge, listener, ev, "agent", lang)
        finally:
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.close()

    async def _connected(self, control: CallControl, bridge: Bridge) -> None:
        """Until one side ends: while the agent holds the call, the caller hears hold audio."""
        music: AudioFrame | None = None
        while not bridge.ended.is_set():
            if bridge.hold_changed.is_set():
                bridge.hold_changed.clear()
                control.flush()  # hold audio starts (or stops) at once
                if bridge.held:
                    control.record.extra["holds"] = control.record.extra.get("holds", 0) + 1
            if bridge.held:
                music = music or hold_audio(control.rate)
                if control.queued_seconds < 1.0:
                    control.play(music)
            waits = [asyncio.ensure_future(bridge.ended.wait()), asyncio.ensure_future(bridge.hold_changed.wait())]
            await asyncio.wait(waits, timeout=0.5 if bridge.held else None, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()

    async def _caller_side(self, control: CallControl, bridge: Bridge, frames: asyncio.Queue, lang: str) -> None:
        listener = self._listener()
        if listener is None:
            return
        try:
            while True:
                await self._transcribe(control, bridge, listener, await frames.get(), "caller", lang)
        finally:
            with contextlib.suppress(Exception):
                await listener.close()

    def _listener(self) -> _Ear | None:
        if self.vad_options is None:
            return None
        from ivr.asr.listener import Listener

        return _Ear(Listener(LISTENER_RATE, self.vad_options, self.asr_engine))

    async def _transcribe(self, control: CallControl, bridge: Bridge, listener: _Ear, frame: AudioFrame, who: str,
                          lang: str) -> None:
        for ev in await listener.hear(frame):
            text = ""
            if isinstance(ev, Transcript) and ev.final:
                text = ev.text.replace(" ", "") if lang.startswith(("zh", "ja")) else ev.text
            elif isinstance(ev, SpeechEnded) and listener.engine is None:
                line, _ = system_line(lang, "bridge_unrecognised", seconds=round(ev.end_pts - ev.start_pts, 1))
                text = line
            if not text:
                continue
            text = mask_text(text)
            line = {"who": who, "text": text, "at": time.time()}
            bridge.transcript.append(line)
            if who == "caller":
                control.record.add_turn("agent", speaker="agent", caller_text=text, input_source="asr")
            else:
                control.record.add_turn("agent", speaker="agent", bot_text=text)
            self.desk.publish(bridge.agent_id, {"type": "transcript", "call_id": control.call_id, **line})

    async def _say(self, control: CallControl, reason: str, **fields: object) -> None:
        await control.say_line(reason, **fields)
