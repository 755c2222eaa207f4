"""Prompt cache: static prompts rendered once per (backend, text, voice, speed, rate), thread-safe, bounded LRU."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future

from ivr.audio.frames import AudioFrame

DEFAULT_MAX_ENTRIES = 512
DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # ~70 minutes of 8 kHz audio, ~23 minutes at 48 kHz


class PromptCache:
    """LRU of rendered prompts. :meth:`get_or_render` renders a missing key once, even when several
    worker threads ask for it at the same time (the others wait for that one rendering)."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[Hashable, AudioFrame] = OrderedDict()
        self._inflight: dict[Hashable, Future[AudioFrame]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> AudioFrame | None:
        """The cached frame, or None (counts a hit when found)."""
        with self._lock:
            frame = self._items.get(key)
            if frame is not None:
                self._items.move_to_end(key)
                self.hits += 1
            return frame

    def put(self, key: Hashable, frame: AudioFrame) -> None:
        with self._lock:
            self._store(key, frame)

    def get_or_render(self, key: Hashable, render: Callable[[], AudioFrame]) -> AudioFrame:
        """Cached frame for ``key``, rendering it (blocking, in this thread) if absent. Errors are not cached."""
        with self._lock:
            frame = self._items.get(key)
            if frame is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return frame
            pending = self._inflight.get(key)
            owner = pending is None
            if owner:
                pending = self._inflight[key] = Future()
                self.misses += 1
            else:
                self.hits += 1
        if not owner:
            return pending.result()
        try:
            frame = render()
        except BaseException as e:
            with self._lock:
                del self._inflight[key]
            pending.set_exception(e)
            raise
        with self._lock:
            self._store(key, frame)
            del self._inflight[key]
        pending.set_result(frame)
        return frame

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.bytes = 0

    def _store(self, key: Hashable, frame: AudioFrame) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= len(old.pcm)
        self._items[key] = frame
        self.bytes += len(frame.pcm)
        while len(self._items) > 1 and (len(self._items) > self.max_entries or self.bytes > self.max_bytes):
            _key, evicted = self._items.popitem(last=False)
            self.bytes -= len(evicted.pcm)
