"""The speech-synthesis contract: :class:`TtsEngine` (async, used by the call layer) and
:class:`TtsBackend` (blocking, one per synthesis library)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from ivr.audio.frames import AudioFrame


class TtsError(Exception):
    """Synthesis cannot be done; the message is one user-facing line."""


@runtime_checkable
class TtsEngine(Protocol):
    """What the call layer speaks through (see :func:`ivr.tts.get_tts`)."""

    name: str

    async def synthesize(self, text: str, rate: int, *, prompt_id: str | None = None) -> AudioFrame:
        """The whole utterance as one s16 mono frame at ``rate``."""
        ...

    def stream(self, text: str, rate: int, *, prompt_id: str | None = None) -> AsyncIterator[AudioFrame]:
        """Sentence by sentence, so the first audio leaves before the rest is ready."""
        ...


class TtsBackend(Protocol):
    """A blocking synthesiser. Called from worker threads; it does its own locking."""

    name: str

    def render(self, text: str, voice: str, speed: int) -> AudioFrame:
        """Speak ``text`` at the backend's own sample rate; raise :class:`TtsError` on failure."""
        ...
