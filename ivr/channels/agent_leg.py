"""A web chat handed to a human agent: the same ACD queue, desktop, callbacks and wrap-up as a call.

When the dialogue of a web chat transfers (the customer asks for a person, strong anger, ...), :class:`ChatAgents`
puts the chat in the agents' queue (:class:`ivr.services.agents.desk.AgentDesk`: skills, priorities, ring timeouts)
with the dialogue's hand-off card. The customer is told the place in the queue; what they type meanwhile goes onto
the card. When an agent accepts (``POST /api/agent/chats/{offer_id}/accept``), a :class:`ChatBridge` connects the
two: customer messages go to the agent's desktop as ``transcript`` events, the agent's replies
(``POST /api/agent/chats/{call_id}/messages``) to the customer's page as ``agent`` messages, and both into the
record as ``agent`` turns (after the bot's turns: one record with both parts). The agent ends the chat with the
desktop's hang-up (the customer is told), or the customer leaves; the record is saved, then the agent goes to
wrap-up. Outside service hours, with nobody signed in, or after ``queue_max_wait_s`` without an agent, the chat
books a callback ticket instead (``ChatSession.book_callback``).

The bridge has the shape of :class:`ivr.call.warm_transfer.Bridge` and lives in the warm-transfer hook's
``bridges`` (then ``recent``), so the desktop's existing state, card and hang-up APIs serve chats too.
Everything here runs on the service's event loop; session methods (blocking, locked) run in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ivr.channels.lines import agent_line
from ivr.privacy import mask_text

if TYPE_CHECKING:
    from ivr.channels.session import ChatSession
    from ivr.services.agents.desk import AgentDesk, Waiting

log = logging.getLogger(__name__)
LIVE_CHANNELS = ("webchat",)  # channels that can show an agent's replies as they are typed (not webhooks)
MAX_AGENT_TEXT = 2000


@dataclass
class ChatBridge:
    """One chat between a customer and an agent (shaped like ``warm_transfer.Bridge`` for the desktop API)."""

    call_id: str
    agent_id: str
    context: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    agent_name: str = ""
    started: float = field(default_factory=time.monotonic)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    end_reason: str = ""
    transcript: list[dict[str, Any]] = field(default_factory=list)
    relaying: bool = False  # no hold for chats: the desktop's hold answers 409
    held: bool = False
    channel: str = "webchat"

    def hangup(self, reason: str = "agent_hangup") -> None:
        """End the chat (from the event loop: the desktop's hang-up, shutdown)."""
        if not self.ended.is_set():
            self.end_reason = reason
            self.ended.set()

    def hangup_threadsafe(self, reason: str) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has stopped: nothing waits any more
            self.loop.call_soon_threadsafe(self.hangup, reason)

    def hold(self, held: bool) -> None:
        """A chat has nothing to hold."""
        return None


class ChatLeg:
    """The agent side of one chat session: queued (``bridge.agent_id`` empty), then connected to an agent."""

    def __init__(self, agents: ChatAgents, session: ChatSession, handoff: dict[str, Any]) -> None:
        self.agents = agents
        self.session = session
        self.bridge = ChatBridge(session.session_id, "", handoff, agents.loop, channel=session.channel)

    @property
    def connected(self) -> bool:
        return bool(self.bridge.agent_id)

    def from_customer(self, text: str) -> None:
        """A customer message while queued or connected (called by the session, in a worker thread)."""
        line = {"who": "caller", "text": mask_text(text), "at": time.time()}
        self.session.call.record.add_turn("agent", speaker="agent", caller_text=line["text"], input_source="text")
        self._line(line)

    def from_agent(self, text: str) -> None:
        line = {"who": "agent", "text": mask_text(text), "at": time.time()}
        self.session.call.record.add_turn("agent", speaker="agent", bot_text=line["text"])
        self._line(line)

    def _line(self, line: dict[str, Any]) -> None:
        def deliver() -> None:
            if self.connected:
                self.bridge.transcript.append(line)
                self.agents.desk.publish(self.bridge.agent_id, {"type": "transcript", "call_id": self.bridge.call_id,
                                                                 **line})
            else:  # still queued: the card the agent will be offered shows it
                self.bridge.context.setdefault("transcript", []).append({"who": line["who"], "text": line["text"]})

        with contextlib.suppress(RuntimeError):
            self.agents.loop.call_soon_threadsafe(deliver)

    def customer_left(self, reason: str) -> None:
        self.bridge.hangup_threadsafe("caller_hangup" if reason != "shutdown" else "shutdown")


class ChatAgents:
    """Hands web chats to the agent desk (see the module docstring). ``registry``: the warm-transfer hook (its
    ``bridges`` and ``recent`` dicts), so the desktop's call APIs find chats."""

    def __init__(self, desk: AgentDesk, registry: Any, loop: asyncio.AbstractEventLoop,
                 find: Callable[[str], ChatSession | None]) -> None:
        self.desk = desk
        self.registry = registry
        self.loop = loop
        self.find = find
        self.tasks: set[asyncio.Task] = set()

    def hand_over(self, session: ChatSession, transfer: Any) -> str:
        """In the session's worker thread: '' when the chat joined the queue, else why it cannot
        ("closed", "unavailable": the session books a callback)."""
        if session.channel not in LIVE_CHANNELS:
            return "none"
        if not self.desk.options.open_at():
            return "closed"
        if self.desk.staffed() == 0:
            return "unavailable"
        handoff = dict(transfer.handoff or {})
        handoff.setdefault("call_id", session.session_id)
        handoff["channel"] = session.channel
        handoff["transcript"] = [  # what the customer saw (the chat's wording, the phone tail already masked)
            {"who": "caller" if m["role"] == "customer" else "bot", "text": mask_text(m["text"])}
            for m in session.messages if m.get("text") and m.get("role") in ("customer", "bot")]
        leg = ChatLeg(self, session, handoff)
        session.leg = leg

        def start() -> None:
            task = self.loop.create_task(self._run(leg, transfer), name=f"chat-agent-{session.session_id}")
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

        self.loop.call_soon_threadsafe(start)
        return ""

    async def _run(self, leg: ChatLeg, transfer: Any) -> None:
        session, desk, bridge = leg.session, self.desk, leg.bridge
        handoff = bridge.context
        vip = bool((handoff.get("order") or {}).get("vip"))
        priority = int(transfer.priority) + (1 if vip else 0)
        w = desk.enqueue(session.session_id, skill=transfer.skill, priority=priority, handoff=handoff, vip=vip,
                         language=session.manager.ctx.language)
        record = session.call.record
        record.extra["queue"] = {"skill": w.skill, "priority": priority, "waited_s": 0.0, "offers": 0}
        t0 = time.monotonic()
        try:
            await self._announce(leg, w)
            got = await self._wait(leg, w)
            record.extra["queue"].update(waited_s=round(time.monotonic() - t0, 1), offers=w.offers)
            if got is None:
                if not session.closed:
                    await asyncio.to_thread(session.book_callback, transfer, "timeout")
                return
            agent, audio_leg = got
            if audio_leg is not None:  # accepted through the audio API: a chat has no audio
                with contextlib.suppress(Exception):
                    await audio_leg.close()
            await self._connected(leg, agent)
        finally:
            desk.leave(w)

    async def _announce(self, leg: ChatLeg, w: Waiting) -> None:
        if w.assigned is None or w.assigned.done():
            return
        m = leg.session.manager
        ahead = max(0, self.desk.position(w) - 1)
        minutes = max(1, round(self.desk.expected_wait_s(w) / 60))
        text = agent_line(m, "queued", ahead=ahead, minutes=minutes) if ahead else agent_line(m, "queued_next")
        await asyncio.to_thread(leg.session.system, text, intent="queued")

    async def _wait(self, leg: ChatLeg, w: Waiting) -> tuple[Any, Any] | None:
        """The agent and its (audio) leg once one accepts; None when the customer left or ``max_wait_s`` passed."""
        assert w.assigned is not None
        deadline = self.loop.time() + self.desk.options.max_wait_s
        while not w.assigned.done():
            if leg.session.closed or leg.bridge.ended.is_set() or self.loop.time() >= deadline:
                return None
            await asyncio.wait([w.assigned], timeout=0.5)
        if w.assigned.cancelled():
            return None
        return w.assigned.result()

    async def _connected(self, leg: ChatLeg, agent: Any) -> None:
        session, bridge = leg.session, leg.bridge
        bridge.agent_id, bridge.agent_name, bridge.started = agent.agent_id, agent.display_name, time.monotonic()
        record = session.call.record
        record.agent_id = agent.agent_id
        record.extra.setdefault("agents", []).append(agent.username)
        self.registry.bridges[bridge.call_id] = bridge
        self.desk.publish(agent.agent_id, {"type": "connected", "call_id": bridge.call_id, "channel": bridge.channel})
        reason = "caller_hangup"
        try:
            await asyncio.to_thread(session.system, agent_line(session.manager, "connected", agent=agent.display_name),
                                    intent="agent_connected")
            await asyncio.to_thread(session.note_matter, "agent", agent=agent.display_name)
            if not session.closed:
                await bridge.ended.wait()
            reason = bridge.end_reason or "caller_hangup"
        finally:
            record.extra["agent_talk_s"] = round(time.monotonic() - bridge.started, 1)
            if not session.closed:
                await asyncio.to_thread(session.end_by_agent, reason)
            self.registry.bridges.pop(bridge.call_id, None)
            self.registry.recent[bridge.call_id] = bridge
            while len(self.registry.recent) > 100:
                self.registry.recent.pop(next(iter(self.registry.recent)))
            if reason == "caller_hangup":
                self.desk.publish(agent.agent_id, {"type": "caller_hangup", "call_id": bridge.call_id})
            self.desk.call_ended(agent.agent_id, bridge.call_id, time.monotonic() - bridge.started)

    def reply(self, call_id: str, agent_id: str, text: str) -> bool:
        """An agent's message to the customer of chat ``call_id``; False when it is not this agent's live chat.
        Blocking (the session lock): call in a worker thread."""
        bridge = self.registry.bridges.get(call_id)
        if not isinstance(bridge, ChatBridge) or bridge.agent_id != agent_id or bridge.ended.is_set():
            return False
        session = self.find(call_id)
        if session is None or session.leg is None:
            return False
        session.agent_say(text, bridge.agent_name)
        return True

    async def close(self) -> None:
        for bridge in list(self.registry.bridges.values()):
            if isinstance(bridge, ChatBridge):
                bridge.hangup("shutdown")
        for t in list(self.tasks):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(t), 5)
