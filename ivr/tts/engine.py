"""The speech engine the call layer uses: backend + prompt cache + recorded overrides, off the event loop."""

from __future__ import annotations

import asyncio
import numbers
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from ivr.audio.frames import SUPPORTED_RATES, AudioFrame, concat_frames
from ivr.audio.resample import resample
from ivr.tts.base import TtsBackend, TtsError
from ivr.tts.cache import PromptCache
from ivr.tts.recorded import RecordedPrompts
from ivr.tts.text import MAX_STREAM_CHARS, MAX_SYNTH_CHARS, clean_text, split_sentences

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def shared_executor(workers: int = 2) -> ThreadPoolExecutor:
    """The bounded thread pool all TTS work runs in (created once; ``workers`` counts on first call only)."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ivr-tts")
        return _executor


def check_rate(rate: int) -> int:
    """``rate`` as a plain int; TtsError unless it is an output rate the pipeline supports."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Integral) or int(rate) not in SUPPORTED_RATES:
        allowed = ", ".join(str(r) for r in SUPPORTED_RATES)
        raise TtsError(f"unsupported sample rate {rate!r} Hz; use one of {allowed}")
    return int(rate)


class SpeechEngine:
    """:class:`~ivr.tts.base.TtsEngine` implementation. Thread-safe; share one per configuration
    (:func:`ivr.tts.get_tts`).

    ``synthesize`` renders the whole text; ``stream`` renders sentence by sentence with one sentence of
    look-ahead, so the first frame is ready after the first sentence. With a ``prompt_id`` the text is a
    static prompt: a recorded ``<prompt_id>.wav`` wins, else the rendering is cached.
    """

    def __init__(
        self,
        backend: TtsBackend,
        *,
        voice: str,
        speed: int,
        recorded: RecordedPrompts | None = None,
        cache: PromptCache | None = None,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.backend = backend
        self.voice = voice
        self.speed = speed
        self.name = f"{backend.name}/{voice}"
        self.recorded = recorded or RecordedPrompts(None)
        self.cache = cache if cache is not None else PromptCache()
        self._executor = executor or shared_executor()

    # -- async API (call path) -------------------------------------------------------------------------------
    async def synthesize(self, text: str, rate: int, *, prompt_id: str | None = None) -> AudioFrame:
        """The whole text as one frame at ``rate`` (TtsError for bad rate, empty or too long text)."""
        rate = check_rate(rate)
        text = clean_text(text, MAX_SYNTH_CHARS)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._synthesize, text, rate, prompt_id)

    async def stream(self, text: str, rate: int, *, prompt_id: str | None = None) -> AsyncIterator[AudioFrame]:
        """Frames at ``rate``, one per sentence (pts continue across frames; ``meta['last']`` marks the end)."""
        rate = check_rate(rate)
        text = clean_text(text, MAX_STREAM_CHARS)
        loop = asyncio.get_running_loop()
        if prompt_id is not None:
            whole = await loop.run_in_executor(self._executor, self._static, text, rate, prompt_id)
            if whole is not None:
                yield AudioFrame(whole.pcm, rate, 0.0, {**whole.meta, "index": 0, "last": True})
                return
        pieces = split_sentences(text)
        rendered: list[AudioFrame] = []
        pending: asyncio.Future[AudioFrame] | None = loop.run_in_executor(self._executor, self._render, pieces[0], rate)
        pts = 0.0
        try:
            for i in range(len(pieces)):
                assert pending is not None
                frame = await pending
                pending = None
                if i + 1 < len(pieces):  # look-ahead: the next sentence renders while this one plays
                    pending = loop.run_in_executor(self._executor, self._render, pieces[i + 1], rate)
                rendered.append(frame)
                out = AudioFrame(frame.pcm, rate, pts, {**frame.meta, "index": i, "last": pending is None})
                pts += out.duration
                yield out
        finally:
            if pending is not None:
                pending.cancel()
        if prompt_id is not None and len(rendered) == len(pieces):
            self.cache.put(self._key(text, rate), concat_frames(rendered))

    # -- blocking helpers (worker threads) -------------------------------------------------------------------
    def _key(self, text: str, rate: int) -> tuple:
        return (self.backend.name, text, self.voice, self.speed, rate)

    def _static(self, text: str, rate: int, prompt_id: str) -> AudioFrame | None:
        """A recorded or already cached rendering of a static prompt, else None."""
        return self.recorded.load(prompt_id, rate) or self.cache.get(self._key(text, rate))

    def _synthesize(self, text: str, rate: int, prompt_id: str | None) -> AudioFrame:
        if prompt_id is None:
            return self._render(text, rate)
        recorded = self.recorded.load(prompt_id, rate)
        if recorded is not None:
            return recorded
        return self.cache.get_or_render(self._key(text, rate), lambda: self._render(text, rate))

    def _render(self, text: str, rate: int) -> AudioFrame:
        raw = self.backend.render(text, self.voice, self.speed)
        if raw.samples == 0:
            raise TtsError("the synthesiser produced no audio for this text")
        out = resample(raw, rate)
        return AudioFrame(out.pcm, rate, 0.0, {**raw.meta, "source": self.backend.name, "text": text})

    def synthesize_sync(self, text: str, rate: int, *, prompt_id: str | None = None) -> AudioFrame:
        """Blocking :meth:`synthesize` for tools outside an event loop (never call it from the loop)."""
        rate = check_rate(rate)
        return self._synthesize(clean_text(text, MAX_SYNTH_CHARS), rate, prompt_id)
