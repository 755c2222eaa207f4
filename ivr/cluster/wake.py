"""Sync rounds on demand (:mod:`ivr.cluster.web`): no waiting for the next tick to see another node's change.

Every node runs a sync round each ``SYNC_S`` (heartbeat, live calls, presence, queue, offers across nodes). With
Redis the round also runs as soon as something changes:

* here: a watcher compares a cheap fingerprint of the node's own state (live calls, its agents' presence, its
  waiting callers) every ``WATCH_S``; on a change the round runs at once and then tells the other nodes with a
  Redis pub/sub message on the ``sync`` channel (``{"node": name}``);
* elsewhere: on such a message from another node the round runs at once (it reads what that node just wrote).

So a caller who joins a queue on one node is offered to a free agent of another within about two rounds plus the
pub/sub hop (tens of milliseconds on a LAN) instead of up to two ticks (2 s); presence, released offers and
callers who left follow the same way. Rounds are at least ``MIN_GAP_S`` apart; the tick stays as the fallback
(a lost message, Redis back after an outage).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Hashable

from ivr.cluster.shared import SharedState

log = logging.getLogger(__name__)
CHANNEL = "sync"
WATCH_S = 0.05
MIN_GAP_S = 0.1


class Wake:
    """When the next sync round runs: see the module docstring. ``fingerprint`` runs on the event loop."""

    def __init__(self, state: SharedState, node: str, fingerprint: Callable[[], Hashable]) -> None:
        self.state, self.node, self.fingerprint = state, node, fingerprint
        self._event = asyncio.Event()
        self._dirty = False
        self._seen: Hashable = None
        self._last = 0.0
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._watch(), name="cluster-watch"),
                       loop.create_task(self._listen(), name="cluster-listen")]

    def stop(self) -> None:
        for t in self._tasks:
            t.cancel()

    async def _watch(self) -> None:
        while True:
            try:
                fp = self.fingerprint()
            except RuntimeError:  # a dict changed size while read: look again next time
                fp = self._seen
            if fp != self._seen:
                self._seen, self._dirty = fp, True
                self._event.set()
            await asyncio.sleep(WATCH_S)

    async def _listen(self) -> None:
        while True:
            try:
                async for msg in self.state.subscribe(CHANNEL):
                    if msg.get("node") != self.node:
                        self._event.set()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # Redis away: the tick goes on; listen again
                log.warning("cluster sync messages: %s", e)
            await asyncio.sleep(1.0)

    async def wait(self, timeout: float) -> None:
        """Until this node changed or another node said it did, at most ``timeout`` (after ``MIN_GAP_S``)."""
        loop = asyncio.get_running_loop()
        gap = self._last + MIN_GAP_S - loop.time()
        if gap > 0:
            await asyncio.sleep(gap)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()
        self._last = loop.time()

    def changed(self) -> bool:
        """Whether this node changed since the last call (then the other nodes are to be told after the round
        that starts now: call it before the round reads the node's state)."""
        dirty, self._dirty = self._dirty, False
        return dirty

    def tell(self) -> None:
        """Blocking: the other nodes run their round now."""
        self.state.publish(CHANNEL, {"node": self.node})
