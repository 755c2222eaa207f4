"""What the call session needs from the speech and dialogue layers (duck-typed), and the runner that keeps the
blocking dialogue off the event loop, one call at a time per dialogue."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, Protocol

from ivr.audio.frames import AudioFrame
from ivr.dialog.types import BotReply


class ListenerLike(Protocol):
    """``ivr.asr.listener.Listener``: VAD + streaming ASR for one call."""

    bot_speaking: bool

    async def push(self, frame: AudioFrame) -> list[Any]: ...


class DialogLike(Protocol):
    """``ivr.dialog.manager.DialogManager``: synchronous, one per call."""

    def start(self) -> BotReply: ...
    def handle_text(self, text: str, confidence: float) -> BotReply: ...
    def handle_dtmf(self, digits: str) -> BotReply: ...
    def handle_no_input(self) -> BotReply: ...
    def played(self, reply_id: int, segments_played: int, fraction_of_last: float) -> Any: ...
    def end(self, reason: str) -> Any: ...


class DialogRunner:
    """Runs one dialogue's methods in a bounded thread pool, strictly one after another."""

    def __init__(self, dialog: Any, executor: Executor | None) -> None:
        self.dialog = dialog
        self.executor = executor
        self._lock = asyncio.Lock()

    async def call(self, method: str, *args: Any, **kw: Any) -> Any:
        fn: Callable[..., Any] | None = getattr(self.dialog, method, None)
        if fn is None:
            return None
        async with self._lock:
            if inspect.iscoroutinefunction(fn):
                return await fn(*args, **kw)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.executor, lambda: fn(*args, **kw))


async def close_listener(listener: Any) -> None:
    """Release a listener's recogniser (``aclose()`` or ``close()``, whichever it has; both may be async)."""
    for name in ("aclose", "close"):
        fn = getattr(listener, name, None)
        if fn is not None:
            res = fn()
            if inspect.isawaitable(res):
                await res
            return
