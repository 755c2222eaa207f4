"""Presence and the ACD queue: which agent gets which waiting caller (in memory, one process).

* Presence per agent: ``offline`` (desktop closed), ``available``, ``ringing`` (a call is offered), ``busy`` (on a
  call), ``wrap_up`` (after a call, until the agent files the disposition), ``away``.
* Routing: the waiting call with the highest priority goes first (strong anger and VIP callers have priority > 0;
  equal priority: longest waiting). It is offered to an available agent who has the call's skill, the one idle
  longest; if nobody with the skill is available, to any available agent (overflow, as most contact centres do).
  Among those, agents with the call's language as a skill (``zh-CN``, ``en-US``) come first, and VIP callers go to
  agents with the ``vip`` skill when one is free.
  An agent who declined a call is not offered it again. An offer not answered within ``ring_timeout_s`` counts as
  declined and the agent is set ``away`` (a desktop nobody watches must not ring on every call).
* Expected wait: position in the queue x average recent handle time / agents signed in (at least one).
* Service hours: outside them nobody is offered calls and callers are offered a callback.

Everything here runs on the service's event loop; nothing blocks. Events for an agent's desktop (offers, the
live transcript, the call state) go to that agent's :class:`asyncio.Queue`s (``subscribe``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

PRESENCE = ("offline", "available", "ringing", "busy", "wrap_up", "away")
SETTABLE = ("available", "away", "offline")  # what an agent may choose; the rest follow calls


@dataclass(frozen=True)
class DeskOptions:
    """Queue settings (defaults follow :class:`ivr.config.Settings`)."""

    ring_timeout_s: float = 20.0
    max_wait_s: float = 120.0
    service_hours: str = ""  # "09:00-21:00" in ``timezone``; empty = always open
    timezone: str = "Asia/Shanghai"
    default_handle_s: float = 180.0  # until calls have been handled, the expected-wait estimate uses this

    def open_at(self, now: datetime | None = None) -> bool:
        """Whether agents take calls at ``now`` (aware datetime; default: the current time)."""
        if not self.service_hours:
            return True
        start_s, end_s = self.service_hours.split("-", 1)
        start, end = dtime.fromisoformat(start_s.strip()), dtime.fromisoformat(end_s.strip())
        local = (now or datetime.now(ZoneInfo(self.timezone))).astimezone(ZoneInfo(self.timezone)).time()
        return start <= local < end if start <= end else (local >= start or local < end)


@dataclass
class AgentState:
    agent_id: str
    username: str
    display_name: str
    role: str
    skills: tuple[str, ...]
    presence: str = "offline"
    idle_since: float = field(default_factory=time.monotonic)
    call_id: str = ""
    offer_id: str = ""
    connections: int = 0  # open desktop event streams

    def public(self) -> dict[str, Any]:
        return {"agent_id": self.agent_id, "username": self.username, "display_name": self.display_name,
                "presence": self.presence, "skills": list(self.skills), "call_id": self.call_id}


@dataclass
class Waiting:
    """A caller in the queue."""

    call_id: str
    skill: str
    priority: int
    handoff: dict[str, Any]
    enqueued_at: float = field(default_factory=time.monotonic)
    seq: int = 0
    declined: set[str] = field(default_factory=set)
    offer_id: str = ""
    offered_to: str = ""
    assigned: asyncio.Future | None = None  # resolves to (agent_id, leg) on accept
    requeued: int = 0
    offers: int = 0  # agents this caller was offered to (declines and ring-outs included)
    vip: bool = False  # prefers agents with the "vip" skill
    language: str = ""  # prefers agents with this language as a skill (zh-CN, en-US), when any has it
    arrived: float = field(default_factory=time.time)  # epoch seconds: orders callers of several nodes
    node: str = ""  # a cluster's caller held by that other node (ivr.cluster.dispatch), else ""

    def public(self, position: int | None = None) -> dict[str, Any]:
        h = self.handoff
        return {"call_id": self.call_id, "skill": self.skill, "priority": self.priority, "position": position,
                "waiting_s": round(time.monotonic() - self.enqueued_at, 1), "caller": h.get("caller", ""),
                "summary": h.get("summary", ""), "mood": (h.get("sentiment") or {}).get("level", "calm")}


class DeskError(Exception):
    """An agent request that cannot be done now (HTTP 409/404 for the desktop)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class AgentDesk:
    """Presence, queue and offers for every agent of this service (see the module docstring)."""

    def __init__(self, options: DeskOptions | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.options = options or DeskOptions()
        self.clock = clock
        self.agents: dict[str, AgentState] = {}
        self.queue: list[Waiting] = []
        self._seq = itertools.count()
        self._subscribers: dict[str, list[asyncio.Queue]] = {}
        self._ring_timers: dict[str, asyncio.TimerHandle] = {}
        self._handle_times: list[float] = []
        # cluster hooks (ivr.cluster.dispatch; None on one node): claim a caller before offering it, release
        # it (taken: accepted), agents signed in on other nodes, and events for agents on other nodes
        self.claim: Callable[[Waiting, AgentState], bool] | None = None
        self.release: Callable[[Waiting, bool], None] | None = None
        self.remote_staffed: Callable[[], int] | None = None
        self.relay: Callable[[str, dict[str, Any]], bool] | None = None

    # --- agents --------------------------------------------------------------------------------------------
    def sign_in(self, account: Any) -> AgentState:
        """Known agent for an account (``ivr.services.agents.Account``); presence unchanged if already known."""
        st = self.agents.get(account.agent_id)
        if st is None:
            st = AgentState(account.agent_id, account.username, account.display_name, account.role,
                            tuple(account.skills))
            self.agents[account.agent_id] = st
        return st

    def set_presence(self, agent_id: str, presence: str) -> AgentState:
        """Agent chooses available / away / offline (not while ringing or on a call)."""
        st = self._agent(agent_id)
        if presence not in SETTABLE and presence != "wrap_up":
            raise DeskError(400, f"presence must be one of {', '.join(SETTABLE)}")
        if st.presence in ("busy", "ringing") and presence != st.presence:
            raise DeskError(409, f"cannot change presence while {st.presence}")
        self._set(st, presence)
        self.dispatch()
        return st

    def _set(self, st: AgentState, presence: str) -> None:
        if presence == "available" and st.presence != "available":
            st.idle_since = self.clock()
        st.presence = presence
        self.publish(st.agent_id, {"type": "presence", "presence": presence, "call_id": st.call_id})
        self._broadcast_queue()

    def _agent(self, agent_id: str) -> AgentState:
        st = self.agents.get(agent_id)
        if st is None:
            raise DeskError(404, "agent not signed in")
        return st

    def available_agents(self) -> list[AgentState]:
        return [a for a in self.agents.values() if a.presence == "available"]

    def staffed(self) -> int:
        """Agents who could take a call soon (not offline or away)."""
        here = sum(1 for a in self.agents.values() if a.presence not in ("offline", "away"))
        return here + (self.remote_staffed() if self.remote_staffed is not None else 0)

    # --- desktop events ------------------------------------------------------------------------------------
    def subscribe(self, agent_id: str) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(maxsize=500)
        self._subscribers.setdefault(agent_id, []).append(q)
        st = self.agents.get(agent_id)
        if st is not None:
            st.connections += 1
        return q

    def unsubscribe(self, agent_id: str, q: asyncio.Queue) -> None:
        subs = self._subscribers.get(agent_id, [])
        with contextlib.suppress(ValueError):
            subs.remove(q)
        st = self.agents.get(agent_id)
        if st is not None:
            st.connections = max(0, st.connections - 1)
            if st.connections == 0 and st.presence == "available":
                self._set(st, "offline")  # desktop closed: do not ring it

    def publish(self, agent_id: str, event: dict[str, Any]) -> None:
        if self.relay is not None and self.relay(agent_id, event):
            return  # the agent's desktop is on another node
        for q in self._subscribers.get(agent_id, []):
            if q.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
            q.put_nowait(event)

    def _broadcast_queue(self) -> None:
        snapshot = {"type": "queue", "waiting": [w.public(i + 1) for i, w in enumerate(self.ordered())],
                    "agents": [a.public() for a in self.agents.values()]}
        for agent_id in list(self._subscribers):
            self.publish(agent_id, snapshot)

    # --- queue ---------------------------------------------------------------------------------------------
    def ordered(self) -> list[Waiting]:
        return sorted(self.queue, key=lambda w: (-w.priority, w.arrived, w.seq))

    def enqueue(self, call_id: str, *, skill: str = "general", priority: int = 0,
                handoff: dict[str, Any] | None = None, vip: bool = False, language: str = "") -> Waiting:
        """Put a caller in the queue and try to route at once. Await ``waiting.assigned`` for the agent."""
        w = Waiting(call_id, skill or "general", priority, dict(handoff or {}), enqueued_at=self.clock(),
                    seq=next(self._seq), assigned=asyncio.get_running_loop().create_future(), vip=vip,
                    language=language)
        self.queue.append(w)
        log.info("call %s queued (skill %s, priority %d)", call_id, w.skill, priority)
        self.dispatch()
        self._broadcast_queue()
        return w

    def requeue(self, w: Waiting, *, priority_boost: int = 1) -> Waiting:
        """Put a caller back (the agent dropped): ahead of callers of its former priority."""
        self.leave(w)
        nw = self.enqueue(w.call_id, skill=w.skill, priority=w.priority + priority_boost, handoff=w.handoff,
                          vip=w.vip, language=w.language)
        nw.requeued, nw.offers = w.requeued + 1, w.offers
        return nw

    def leave(self, w: Waiting) -> None:
        """The caller left the queue (hung up, timed out, took a callback); an open offer is withdrawn."""
        if w in self.queue:
            self.queue.remove(w)
        if w.offer_id:
            self._withdraw(w, "caller_left")
        if w.assigned is not None and not w.assigned.done():
            w.assigned.cancel()
        self._broadcast_queue()

    def position(self, w: Waiting) -> int:
        """1-based place in the queue (0 if no longer waiting)."""
        order = self.ordered()
        return order.index(w) + 1 if w in order else 0

    def expected_wait_s(self, w: Waiting) -> float:
        recent = self._handle_times[-20:]
        avg = sum(recent) / len(recent) if recent else self.options.default_handle_s
        ahead = max(0, self.position(w) - 1)
        if self.available_agents():
            return 0.0 if ahead == 0 else ahead * avg / max(1, self.staffed())
        return (ahead + 1) * avg / max(1, self.staffed())

    def dispatch(self) -> None:
        """Offer waiting calls to available agents (see the module docstring)."""
        if not self.options.open_at():
            return
        for w in self.ordered():
            if w.offer_id:
                continue
            agent = self._pick(w)
            if agent is None:
                continue
            if self.claim is not None and not self.claim(w, agent):
                continue  # another node offers this caller now
            self._offer(w, agent)

    def _pick(self, w: Waiting) -> AgentState | None:
        free = [a for a in self.available_agents() if a.agent_id not in w.declined]
        skilled = [a for a in free if w.skill in a.skills or w.skill == "general"]
        pool = skilled or free
        if w.language:
            pool = [a for a in pool if w.language in a.skills] or pool
        if w.vip:
            pool = [a for a in pool if "vip" in a.skills] or pool
        return min(pool, key=lambda a: a.idle_since) if pool else None

    def _offer(self, w: Waiting, agent: AgentState) -> None:
        w.offer_id = "of_" + secrets.token_hex(6)
        w.offered_to = agent.agent_id
        w.offers += 1
        agent.offer_id, agent.call_id = w.offer_id, w.call_id
        self._set(agent, "ringing")
        self.publish(agent.agent_id, {"type": "offer", "offer_id": w.offer_id, "call_id": w.call_id,
                                      "context": w.handoff, "ring_timeout_s": self.options.ring_timeout_s})
        loop = asyncio.get_running_loop()
        self._ring_timers[w.offer_id] = loop.call_later(self.options.ring_timeout_s, self._ring_timeout, w.offer_id)
        log.info("call %s offered to agent %s", w.call_id, agent.username)

    def _find_offer(self, agent_id: str, offer_id: str) -> Waiting:
        for w in self.queue:
            if w.offer_id == offer_id and w.offered_to == agent_id:
                return w
        raise DeskError(409, "this call is no longer offered to you")

    def accept(self, agent_id: str, offer_id: str, leg: Any) -> Waiting:
        """The agent takes the call; ``leg`` is the agent's audio connection (a CallPort-like object)."""
        w = self._find_offer(agent_id, offer_id)
        agent = self._agent(agent_id)
        self._cancel_ring(offer_id)
        self.queue.remove(w)
        if self.release is not None:
            self.release(w, True)
        w.offer_id = ""
        agent.offer_id = ""
        self._set(agent, "busy")
        if w.assigned is not None and not w.assigned.done():
            w.assigned.set_result((agent, leg))
        log.info("call %s accepted by agent %s", w.call_id, agent.username)
        return w

    def decline(self, agent_id: str, offer_id: str, *, reason: str = "declined") -> None:
        """The agent refuses the offer; the call goes to the next agent."""
        w = self._find_offer(agent_id, offer_id)
        self._withdraw(w, reason)
        self.dispatch()

    def _withdraw(self, w: Waiting, reason: str) -> None:
        offer_id, agent_id = w.offer_id, w.offered_to
        self._cancel_ring(offer_id)
        if self.release is not None:
            self.release(w, False)
        w.offer_id = w.offered_to = ""
        agent = self.agents.get(agent_id)
        if reason in ("declined", "no_answer", "phone_failed"):
            w.declined.add(agent_id)
        if agent is not None and agent.offer_id == offer_id:
            agent.offer_id, agent.call_id = "", ""
            self.publish(agent_id, {"type": "offer_cancelled", "offer_id": offer_id, "call_id": w.call_id,
                                    "reason": reason})
            self._set(agent, "away" if reason in ("no_answer", "phone_failed") else "available")

    def _ring_timeout(self, offer_id: str) -> None:
        self._ring_timers.pop(offer_id, None)
        for w in self.queue:
            if w.offer_id == offer_id:
                log.info("agent did not answer call %s in %.0f s", w.call_id, self.options.ring_timeout_s)
                self._withdraw(w, "no_answer")
                self.dispatch()
                return

    def _cancel_ring(self, offer_id: str) -> None:
        t = self._ring_timers.pop(offer_id, None)
        if t is not None:
            t.cancel()

    # --- after the call -------------------------------------------------------------------------------------
    def call_ended(self, agent_id: str, call_id: str, handle_s: float | None = None) -> None:
        """The bridged call is over: the agent goes to wrap-up."""
        agent = self.agents.get(agent_id)
        if handle_s is not None:
            self._handle_times.append(handle_s)
        if agent is not None and agent.call_id == call_id:
            self.publish(agent_id, {"type": "call_ended", "call_id": call_id})
            self._set(agent, "wrap_up")

    def agent_dropped(self, agent_id: str, call_id: str) -> None:
        """The agent's connection died mid-call: the agent is offline until the desktop comes back."""
        agent = self.agents.get(agent_id)
        if agent is not None and agent.call_id == call_id:
            agent.call_id = ""
            self._set(agent, "offline")

    def wrapped_up(self, agent_id: str) -> None:
        agent = self._agent(agent_id)
        agent.call_id = ""
        if agent.presence == "wrap_up":
            self._set(agent, "available")
        self.dispatch()
