"""What the call session needs from the speech and dialogue layers (typed protocols), and the runner that keeps
the blocking dialogue off the event loop, one call at a time per dialogue.

``ivr.asr.listener.Listener`` (and fixture replay's ``ReferenceListener``) satisfy :class:`ListenerLike`;
``ivr.dialog.manager.DialogManager`` satisfies :class:`DialogLike`. The call layer names no class of theirs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import Protocol, TypeVar

from ivr.audio.frames import AudioFrame
from ivr.dialog.types import BotReply
from ivr.events import BargeIn, SpeechEnded, SpeechStarted, Transcript
from ivr.services.shop.api import ShopService

ListenerEvent = SpeechStarted | SpeechEnded | BargeIn | Transcript
LISTENER_RATE = 16000  # the VAD/ASR side of every call; transports at 8/48 kHz are converted by the session
T = TypeVar("T")


class ListenerLike(Protocol):
    """VAD + streaming ASR for one call (``ivr.asr.listener.Listener``)."""

    sample_rate: int
    bot_speaking: bool  # the bot is talking: the segmenter is stricter (echo, backchannels)

    async def open(self) -> None: ...  # get ready for the first utterance (e.g. a warm recogniser)
    async def push(self, frame: AudioFrame) -> list[ListenerEvent]: ...
    async def close(self) -> None: ...


class DialogContextLike(Protocol):
    """The part of the dialogue's per-call context the call reads."""

    @property
    def caller_id(self) -> str: ...
    @property
    def served(self) -> int: ...  # tasks completed for the caller


class DialogLike(Protocol):
    """``ivr.dialog.manager.DialogManager``: synchronous, one per call."""

    @property
    def ctx(self) -> DialogContextLike: ...
    @property
    def shop(self) -> ShopService: ...
    @property
    def outcome(self) -> str: ...  # "transferred", "callback", "resolved", ... once the dialogue knows
    @property
    def csat(self) -> int | None: ...
    @property
    def feedback(self) -> list[str]: ...
    @property
    def expects_secret(self) -> bool: ...  # the next answer is a credential (masked in records)

    def start(self) -> BotReply: ...
    def handle_text(self, text: str, confidence: float) -> BotReply: ...
    def handle_dtmf(self, digits: str) -> BotReply: ...
    def handle_no_input(self) -> BotReply: ...
    def played(self, reply_id: int, segments_played: int, fraction_of_last: float) -> None: ...
    def end(self, reason: str) -> None: ...


class TtsLike(Protocol):
    """Streaming speech synthesis (``ivr.tts.engine.TtsEngine``)."""

    def stream(self, text: str, rate: int, *, prompt_id: str | None = None) -> AsyncIterator[AudioFrame]: ...
    async def synthesize(self, text: str, rate: int, *, prompt_id: str | None = None) -> AudioFrame: ...


class DialogRunner:
    """Runs one dialogue's steps in a bounded thread pool, strictly one after another."""

    def __init__(self, dialog: DialogLike, executor: Executor | None) -> None:
        self.dialog = dialog
        self.executor = executor
        self._lock = asyncio.Lock()

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` (blocking work on this call's dialogue or shop) in the pool, serialised with the steps."""
        async with self._lock:
            return await asyncio.get_running_loop().run_in_executor(self.executor, fn)

    async def start(self) -> BotReply:
        return await self.run(self.dialog.start)

    async def handle_text(self, text: str, confidence: float) -> BotReply:
        return await self.run(lambda: self.dialog.handle_text(text, confidence))

    async def handle_dtmf(self, digits: str) -> BotReply:
        return await self.run(lambda: self.dialog.handle_dtmf(digits))

    async def handle_no_input(self) -> BotReply:
        return await self.run(self.dialog.handle_no_input)

    async def played(self, reply_id: int, segments_played: int, fraction_of_last: float) -> None:
        await self.run(lambda: self.dialog.played(reply_id, segments_played, fraction_of_last))

    async def end(self, reason: str) -> None:
        await self.run(lambda: self.dialog.end(reason))
