"""Threads that run recogniser work off the event loop, the most urgent job first.

Vosk releases the GIL inside ``AcceptWaveform``/``FinalResult`` (measured: two threads decode on two cores at
twice the CPU in the same wall time), so a few threads use every core of the machine. What used to hold calls
back was not the GIL but queueing: one hop per 20 ms frame, 1.7 s recogniser warm-ups on the same two threads as
decoding, and finals waiting behind other calls' audio. Here:

* a job is a batch of audio (or an utterance's final), not a frame;
* finals go before batches (a caller is waiting for the reply), and each stream has at most one job queued, so
  the queue is bounded by the number of open streams;
* speculative work runs on threads of its own at a lower OS priority: warming spares ahead of need
  (:attr:`DecodePool.background`; a warm-up costs ~2 CPU-s, measured) and destroying recycled recognisers (freeing
  ~100 MB, ``malloc_trim``: :attr:`DecodePool.reaper`). It never occupies a decoding thread and only takes CPU the
  decoding of talking callers leaves idle (measured before: 8 callers arriving together queued 8 warm-ups, 17
  CPU-s, in front of their own first utterances; replies came 1.8 s late on a quiet machine, 12-18 s on a busy one).
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

FINAL = 0  # an utterance's final result: the caller is waiting
FEED = 1  # a batch of an ongoing utterance
_STOP = 99


BACKGROUND_NICE = 10  # the warm-up and reaper threads run this much nicer than the process (Linux: per thread)


def lower_thread_priority(step: int = BACKGROUND_NICE) -> None:
    """Make the calling thread ``step`` nicer than it is (Linux threads have their own niceness; elsewhere a
    no-op). Relative, so a service started with a raised priority keeps the order decode > warm-up."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + step))
    except (AttributeError, OSError):
        pass


class DecodePool:
    """``threads`` decoding threads fed from one priority queue (bounded at ``max_queued`` jobs), plus separate
    executors for recogniser creation and warm-up, and for freeing recognisers."""

    def __init__(self, threads: int = 2, *, background_threads: int = 1, max_queued: int = 1024,
                 name: str = "vosk") -> None:
        self.threads = max(1, threads)
        self._queue: queue.PriorityQueue[tuple[int, int, Callable[[], None]]] = queue.PriorityQueue(max_queued)
        self._seq = itertools.count()
        self._closed = False
        self._workers = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(self.threads)]
        for t in self._workers:
            t.start()
        # Speculative work (spares warmed ahead, freeing recycled recognisers) runs at a lower OS priority: it uses
        # idle CPU and never slows the decoding of a caller who is talking (a warm-up costs ~2 CPU-s).
        self.background = ThreadPoolExecutor(max_workers=max(1, background_threads),
                                             thread_name_prefix=f"{name}-warm", initializer=lower_thread_priority)
        self.reaper = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-free",
                                         initializer=lower_thread_priority)

    def submit(self, priority: int, fn: Callable[..., T], *args: object) -> Future[T]:
        """Queue ``fn(*args)``; lower ``priority`` runs first (FIFO within a priority)."""
        if self._closed:
            raise RuntimeError("decode pool is shut down")
        fut: Future[T] = Future()

        def job() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn(*args))
            except BaseException as e:  # handed to whoever awaits the future
                fut.set_exception(e)

        try:
            self._queue.put_nowait((priority, next(self._seq), job))
        except queue.Full:
            raise RuntimeError("decode queue full: more recognition jobs queued than streams can have") from None
        return fut

    @property
    def queued(self) -> int:
        """Jobs waiting for a thread."""
        return self._queue.qsize()

    def _work(self) -> None:
        while True:
            priority, _, job = self._queue.get()
            if priority == _STOP:
                return
            job()

    def shutdown(self, wait: bool = True) -> None:
        """Finish queued jobs, then stop the threads."""
        if self._closed:
            return
        self._closed = True
        for _ in self._workers:
            self._queue.put((_STOP, next(self._seq), lambda: None))
        if wait:
            for t in self._workers:
                t.join()
        self.background.shutdown(wait=wait)
        self.reaper.shutdown(wait=wait)
