"""The live state the nodes of a cluster share, behind one protocol with two implementations:

* :class:`InProcessState`: dictionaries in this process (the embedded single-node default: today's behaviour);
* :class:`ivr.cluster.redis_state.RedisState`: Redis (``redis_url``), so every node sees the same.

What is shared: the nodes alive (heartbeats with expiry), the live-call index (which node holds a call, so an
action on it reaches that node), login throttle windows, agent presence with expiry, an ACD queue ordered by
priority then arrival, claims (who offers a waiting caller: one holder, expiring), and event fan-out (publish/subscribe). Calls and media never leave their node.

Blocking methods are quick (loopback or LAN Redis); call them off the event loop when doing many at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from ivr.cluster.types import LiveCall, queue_score
from ivr.web.throttle import Windows

__all__ = ["InProcessState", "LiveCall", "SharedState", "Throttle", "open_state", "queue_score"]


class Throttle(Protocol):
    """Failure windows per key (ivr.web.throttle.Windows is the in-process one)."""

    def blocked_for(self, key: str) -> float: ...
    def begin(self, key: str) -> None: ...
    def end(self, key: str, failed: bool | None) -> None: ...


class SharedState(Protocol):
    """What nodes share. ``ttl_s`` bounds how long a dead node's entries outlive it."""

    shared: bool  # False: only this process sees it

    def heartbeat(self, node: str, url: str, ttl_s: float) -> None: ...
    def nodes(self) -> dict[str, str]: ...
    def put_calls(self, calls: list[LiveCall], ttl_s: float) -> None: ...
    def drop_call(self, call_id: str) -> None: ...
    def owner(self, call_id: str) -> LiveCall | None: ...
    def live_calls(self) -> list[LiveCall]: ...
    def calls_of(self, node: str) -> list[str]: ...
    def forget_node(self, node: str) -> list[str]: ...
    def throttle(self, name: str, limit: int, window_s: float) -> Throttle: ...
    def set_presence(self, agent_id: str, node: str, presence: str, ttl_s: float) -> None: ...
    def presence(self) -> dict[str, dict[str, str]]: ...
    def drop_presence(self, agent_id: str, node: str) -> None: ...
    def enqueue(self, ticket: str, priority: int, data: dict[str, Any]) -> None: ...
    def queue(self) -> list[tuple[str, dict[str, Any]]]: ...
    def take(self) -> tuple[str, dict[str, Any]] | None: ...
    def remove(self, ticket: str) -> bool: ...
    def claim(self, key: str, value: str, ttl_s: float) -> bool: ...
    def reclaim(self, key: str, value: str, ttl_s: float) -> bool: ...
    def unclaim(self, key: str, value: str) -> None: ...
    def publish(self, channel: str, event: dict[str, Any]) -> None: ...
    def subscribe(self, channel: str) -> AsyncIterator[dict[str, Any]]: ...
    def close(self) -> None: ...


class InProcessState:
    """Everything in this process; entries expire like Redis keys would."""

    shared = False

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._nodes: dict[str, tuple[str, float]] = {}
        self._calls: dict[str, tuple[LiveCall, float]] = {}
        self._node_calls: dict[str, set[str]] = {}
        self._throttles: dict[str, Windows] = {}
        self._presence: dict[str, tuple[dict[str, str], float]] = {}
        self._queue: dict[str, tuple[float, dict[str, Any]]] = {}
        self._claims: dict[str, tuple[str, float]] = {}
        self._subscribers: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Queue]]] = {}

    def heartbeat(self, node: str, url: str, ttl_s: float) -> None:
        with self._lock:
            self._nodes[node] = (url, self._clock() + ttl_s)

    def nodes(self) -> dict[str, str]:
        now = self._clock()
        with self._lock:
            return {n: url for n, (url, until) in self._nodes.items() if until > now}

    def put_calls(self, calls: list[LiveCall], ttl_s: float) -> None:
        until = self._clock() + ttl_s
        with self._lock:
            for c in calls:
                self._calls[c.call_id] = (c, until)
                self._node_calls.setdefault(c.node, set()).add(c.call_id)

    def drop_call(self, call_id: str) -> None:
        with self._lock:
            entry = self._calls.pop(call_id, None)
            if entry is not None:
                self._node_calls.get(entry[0].node, set()).discard(call_id)

    def owner(self, call_id: str) -> LiveCall | None:
        with self._lock:
            entry = self._calls.get(call_id)
        return entry[0] if entry is not None and entry[1] > self._clock() else None

    def live_calls(self) -> list[LiveCall]:
        now = self._clock()
        with self._lock:
            return sorted((c for c, until in self._calls.values() if until > now), key=lambda c: c.started_at)

    def calls_of(self, node: str) -> list[str]:
        with self._lock:
            return sorted(self._node_calls.get(node, set()))

    def forget_node(self, node: str) -> list[str]:
        with self._lock:
            ids = sorted(self._node_calls.pop(node, set()))
            self._nodes.pop(node, None)
            for cid in ids:
                self._calls.pop(cid, None)
            return ids

    def throttle(self, name: str, limit: int, window_s: float) -> Throttle:
        with self._lock:
            return self._throttles.setdefault(name, Windows(limit, window_s))

    def set_presence(self, agent_id: str, node: str, presence: str, ttl_s: float) -> None:
        with self._lock:
            self._presence[agent_id] = ({"node": node, "presence": presence}, self._clock() + ttl_s)

    def presence(self) -> dict[str, dict[str, str]]:
        now = self._clock()
        with self._lock:
            return {a: dict(p) for a, (p, until) in self._presence.items() if until > now}

    def drop_presence(self, agent_id: str, node: str) -> None:
        """Forget an agent's presence if ``node`` announced it (not if the agent is signed in elsewhere now)."""
        with self._lock:
            if self._presence.get(agent_id, ({},))[0].get("node") == node:
                self._presence.pop(agent_id, None)

    def enqueue(self, ticket: str, priority: int, data: dict[str, Any]) -> None:
        with self._lock:
            if ticket not in self._queue:
                self._queue[ticket] = (queue_score(priority, self._clock()), dict(data))

    def queue(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return [(t, dict(d)) for t, (_s, d) in sorted(self._queue.items(), key=lambda kv: kv[1][0])]

    def take(self) -> tuple[str, dict[str, Any]] | None:
        with self._lock:
            if not self._queue:
                return None
            ticket = min(self._queue, key=lambda t: self._queue[t][0])
            return ticket, self._queue.pop(ticket)[1]

    def remove(self, ticket: str) -> bool:
        with self._lock:
            return self._queue.pop(ticket, None) is not None

    def claim(self, key: str, value: str, ttl_s: float) -> bool:
        """Hold ``key`` as ``value`` for ``ttl_s`` unless someone holds it (atomic: one winner)."""
        now = self._clock()
        with self._lock:
            held = self._claims.get(key)
            if held is not None and held[1] > now:
                return held[0] == value
            self._claims[key] = (value, now + ttl_s)
            return True

    def reclaim(self, key: str, value: str, ttl_s: float) -> bool:
        """Hold ``key`` longer (or anew), only if ``value`` holds it or nobody does."""
        now = self._clock()
        with self._lock:
            held = self._claims.get(key)
            if held is not None and held[1] > now and held[0] != value:
                return False
            self._claims[key] = (value, now + ttl_s)
            return True

    def unclaim(self, key: str, value: str) -> None:
        with self._lock:
            if self._claims.get(key, ("",))[0] == value:
                self._claims.pop(key, None)

    def publish(self, channel: str, event: dict[str, Any]) -> None:
        data = json.loads(json.dumps(event))  # what a subscriber elsewhere would get
        with self._lock:
            subs = list(self._subscribers.get(channel, []))
        for loop, q in subs:
            with contextlib.suppress(RuntimeError):  # that loop is closed
                loop.call_soon_threadsafe(q.put_nowait, data)

    async def subscribe(self, channel: str) -> AsyncIterator[dict[str, Any]]:
        q: asyncio.Queue = asyncio.Queue()
        entry = (asyncio.get_running_loop(), q)
        with self._lock:
            self._subscribers.setdefault(channel, []).append(entry)
        try:
            while True:
                yield await q.get()
        finally:
            with self._lock:
                self._subscribers[channel].remove(entry)

    def close(self) -> None:
        pass


def open_state(redis_url: str) -> SharedState:
    """Redis when ``redis_url`` is set, else in process."""
    if not redis_url:
        return InProcessState()
    from ivr.cluster.redis_state import RedisState

    return RedisState(redis_url)
