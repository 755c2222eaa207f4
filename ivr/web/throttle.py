"""Login throttling with bounded memory, and the cap on concurrent password hashes.

* :class:`Windows`: failures per key (a username, a client address) in a sliding window; at most ``max_keys``
  keys are kept (least recently used dropped), each with at most ``limit`` timestamps, so a flood of made-up
  names or addresses costs a fixed amount of memory.
* :class:`HashGate`: at most ``concurrency`` argon2 checks (~64 MiB each) run at once, at most ``queue`` more wait;
  beyond that :class:`Busy` (the caller answers 429 + Retry-After). ``STATS`` counts the checks (tests read it).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator

STATS = {"checks": 0, "running": 0, "max_running": 0, "refused": 0}


class Windows:
    """Sliding-window failure counts per key, size-capped (LRU)."""

    def __init__(self, limit: int, window_s: float, max_keys: int = 10000) -> None:
        self.limit, self.window_s, self.max_keys = limit, window_s, max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._pending: dict[str, int] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        q = self._hits.get(key)
        if q is None:
            return None
        while q and now - q[0] >= self.window_s:
            q.popleft()
        if not q:
            del self._hits[key]
            return None
        self._hits.move_to_end(key)
        return q

    def blocked_for(self, key: str) -> float:
        """Seconds until ``key`` may try again (0: it may now). Attempts in flight count as failures."""
        now = time.monotonic()
        with self._lock:
            q = self._recent(key, now)
            n = (len(q) if q else 0) + self._pending.get(key, 0)
            if n < self.limit:
                return 0.0
            return max(1.0, self.window_s - (now - q[0])) if q else 1.0

    def begin(self, key: str) -> None:
        """An attempt for ``key`` is being checked (counted until :meth:`end`)."""
        with self._lock:
            self._pending[key] = self._pending.get(key, 0) + 1

    def end(self, key: str, failed: bool | None) -> None:
        """The attempt is over: ``failed`` True counts a failure, False clears ``key``, None changes nothing."""
        now = time.monotonic()
        with self._lock:
            left = self._pending.get(key, 1) - 1
            if left > 0:
                self._pending[key] = left
            else:
                self._pending.pop(key, None)
            if failed is None:
                return
            if not failed:
                self._hits.pop(key, None)
                return
            q = self._recent(key, now)
            if q is None:
                q = self._hits[key] = deque(maxlen=self.limit)
            q.append(now)
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)

    def __len__(self) -> int:
        return len(self._hits)


class Busy(Exception):
    """Too many password checks running and waiting: answer 429."""


class HashGate:
    """At most ``concurrency`` hash checks at once, ``queue`` waiting; more raise :class:`Busy`."""

    def __init__(self, concurrency: int, queue: int) -> None:
        self.concurrency, self.limit = concurrency, concurrency + queue
        self._sem: asyncio.Semaphore | None = None
        self._inside = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._inside >= self.limit:
            STATS["refused"] += 1
            raise Busy()
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.concurrency)
        self._inside += 1
        try:
            async with self._sem:
                STATS["checks"] += 1
                STATS["running"] += 1
                STATS["max_running"] = max(STATS["max_running"], STATS["running"])
                try:
                    yield
                finally:
                    STATS["running"] -= 1
        finally:
            self._inside -= 1
