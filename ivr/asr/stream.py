"""One call's streaming recognition on a pooled Vosk recogniser, fed in batches without holding the call back.

:meth:`AsrStream.feed` only queues audio: while an utterance goes on, whole ``batch_ms`` batches go to the decode
threads (at most one job per stream in flight; audio arriving meanwhile joins the next batch), and the call's
inbound path returns at once, so the VAD (endpoint, barge-in) keeps wire time however busy recognition is.
:meth:`finish` sends the rest at once, ahead of other calls' batches (with this stream's own batch, when that one
is still queued behind them). Back-pressure: once more than
``max_backlog_s`` of audio waits for the recogniser, ``feed`` waits for it (never an unbounded queue).

A free-speech stream holds a pooled recogniser only from an utterance's first audio to its final, then gives it
back (a Vosk recogniser's memory grows with what it hears: see ivr/asr/engine.py); a grammar stream keeps the
recogniser made for it.
"""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import Future

import numpy as np

from ivr.asr.normalize import is_non_speech, normalize_text
from ivr.asr.recognizer import Recognizer, RecognizerPool
from ivr.asr.workers import FEED, FINAL
from ivr.audio.frames import AudioFrame
from ivr.audio.resample import Resampler
from ivr.events import Transcript, Word

_PARTIAL_EVERY_S = 0.1  # ask Vosk for a partial at most every 100 ms of audio (one per batch at 160 ms)
_FEED_MS = 20  # Vosk gets fixed blocks of this length whatever the transport's packet or batch size


class AsrStream:
    """Recognition of one call's (or one utterance's) speech on one pooled recogniser.

    Feed the utterance's frames, then :meth:`finish` at *our* endpoint; repeat for the next utterance; then
    :meth:`close`. Word times in results are seconds from the start of the utterance's audio.
    """

    def __init__(self, engine: RecognizerPool, recognizer: Recognizer | Future | None, *, hold: bool = False,
                 batch_ms: int = 160, max_backlog_s: float = 4.0) -> None:
        self.engine = engine
        self._r: Recognizer | Future | None = recognizer  # None: none held (between utterances)
        self._hold = hold  # keep the recogniser between utterances (one made for this stream)
        self._batch_ms = max(_FEED_MS, batch_ms - batch_ms % _FEED_MS)
        self._max_backlog_s = max_backlog_s
        self._job: asyncio.Future | None = None
        self._job_done = asyncio.Event()
        self._job_done.set()
        self._error: BaseException | None = None
        self._loop = asyncio.get_running_loop()
        self._waiting_for_recognizer = False
        self._closed = False
        self._queued: tuple[Future, bytes] | None = None  # the last batch sent and its audio
        self.jobs = 0  # batches and finals sent to the decode threads (a frame is never a job of its own)
        self.audio_s = 0.0  # seconds of call audio fed, all utterances
        self._new_utterance()

    def _new_utterance(self) -> None:
        e = self.engine
        self._resampler = None if e.sample_rate == e.recognizer_rate else Resampler(e.sample_rate, e.recognizer_rate)
        self._committed: list[dict] = []  # Vosk's own mid-utterance results (its endpointer is not ours)
        self._pending = bytearray()  # recogniser-rate audio not yet sent to a decode thread
        self._block = e.recognizer_rate * _FEED_MS // 1000 * 2
        self._batch = self._block * (self._batch_ms // _FEED_MS)
        self._base_samples: int | None = None
        self._partial = ""  # Vosk's latest partial for the current utterance
        self._last_partial = ""  # the text last returned as a partial Transcript
        self._since_partial = 0
        self._dirty = False
        self._drain = False  # send what is pending now, whole blocks even short of a batch (see flush)

    # --- the pump (runs on the event loop) ---------------------------------------------------------------
    def _ready_recognizer(self) -> Recognizer | None:
        r = self._r
        if isinstance(r, Future):
            if not r.done():
                if not self._waiting_for_recognizer:
                    self._waiting_for_recognizer = True
                    r.add_done_callback(lambda _f: self._loop.call_soon_threadsafe(self._kick))
                return None
            r = self._r = r.result()
            r.uses += 1
        return r

    def _kick(self) -> None:
        """Send a whole batch to the decode threads if none of ours is in flight."""
        least = self._block if self._drain else self._batch
        if self._job is not None or self._r is None or len(self._pending) < least:
            return
        try:
            r = self._ready_recognizer()
        except BaseException as e:  # the recogniser could not be created: surfaced by the next feed/finish
            self._error, self._r = e, None
            return
        if r is None:
            return
        whole = len(self._pending) - len(self._pending) % self._block
        pcm = bytes(self._pending[:whole])
        del self._pending[:whole]
        self._since_partial += len(pcm) // 2
        want = self._since_partial >= _PARTIAL_EVERY_S * r.rate
        if want:
            self._since_partial = 0
        self._start_job(FEED, self._accept, r, pcm, want)

    def _start_job(self, priority: int, fn, *args) -> asyncio.Future:
        job = self.engine._pool.submit(priority, fn, *args)
        self._queued = (job, args[1]) if priority == FEED else None  # a batch: its audio, should finish() take it
        fut = asyncio.wrap_future(job, loop=self._loop)
        self._job = fut
        self._job_done.clear()
        self.jobs += 1
        fut.add_done_callback(self._on_batch_done if priority == FEED else self._on_final_done)
        # finish() awaits the final through a shield: a caller hanging up cancels finish(), not the tracked job, so
        # the stream stays busy until the decode thread has really left the recogniser (cancelling the wrapper
        # itself marked it done at once, close() then released the recogniser on the other decode thread while
        # the final still ran in it: two threads in one Vosk recogniser, "double free or corruption").
        return asyncio.shield(fut) if priority == FINAL else fut

    def _on_final_done(self, fut: asyncio.Future) -> None:
        self._job = None  # the result is finish()'s (or nobody's: its caller hung up)
        self._job_done.set()
        if not fut.cancelled():
            fut.exception()  # retrieved: a final nobody waits for any more is not an unhandled error

    def _on_batch_done(self, fut: asyncio.Future) -> None:
        self._job = None
        self._job_done.set()
        if fut.cancelled():
            return
        if fut.exception() is not None:
            self._error = fut.exception()
            return
        results, partial = fut.result()
        self._committed += results
        if partial is not None:
            self._partial = partial
        self._kick()

    def _raise_error(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    async def _idle(self) -> None:
        """Wait until no job of ours is in flight."""
        while self._job is not None:
            await self._job_done.wait()

    async def _recognizer(self) -> Recognizer:
        r = self._r
        if isinstance(r, Future):
            await asyncio.wrap_future(r, loop=self._loop)
            r = self._ready_recognizer()
        if r is None:
            self._raise_error()
            raise RuntimeError("ASR stream is closed")
        return r

    # --- decode threads ----------------------------------------------------------------------------------
    def _accept(self, r: Recognizer, pcm: bytes, want_partial: bool) -> tuple[list[dict], str | None]:
        """Feed whole FEED_MS blocks (results then do not depend on how the transport chunked the audio)."""
        if self._base_samples is None:
            self._base_samples = r.fed_samples
        results = []
        for i in range(0, len(pcm), self._block):
            block = pcm[i : i + self._block]
            r.fed_samples += len(block) // 2
            if r.rec.AcceptWaveform(block):
                results.append(json.loads(r.rec.Result()))
        if want_partial:
            return results, json.loads(r.rec.PartialResult()).get("partial", "")
        return results, None

    def _final(self, r: Recognizer, tail: bytes) -> tuple[list[dict], dict]:
        results = self._accept(r, tail, False)[0] if tail else []
        return results, json.loads(r.rec.FinalResult())

    # --- public ------------------------------------------------------------------------------------------
    @property
    def backlog_s(self) -> float:
        """Audio queued here and not yet sent to the recogniser."""
        return len(self._pending) / 2 / self.engine.recognizer_rate

    async def feed(self, frame: AudioFrame) -> Transcript | None:
        """Queue more audio; returns a partial Transcript when the running text changed since the last one."""
        if frame.sample_rate != self.engine.sample_rate:
            raise ValueError(
                f"ASR stream expects {self.engine.sample_rate} Hz audio, got {frame.sample_rate} Hz "
                "(resample before feeding; mismatched rates give garbage silently)"
            )
        self._raise_error()
        if self._closed:
            raise RuntimeError("ASR stream is closed")
        if self._r is None:  # the utterance's first audio: a recogniser from the pool
            self._r = self.engine._acquire_future()
            self._waiting_for_recognizer = False
            if isinstance(self._r, Recognizer):
                self._r.uses += 1
        self._pending += frame.pcm if self._resampler is None else self._resampler.process(frame).pcm
        self.audio_s += frame.duration
        self.engine.overload.note(id(self), self.backlog_s)
        self._dirty = True
        self._drain = False
        self._kick()
        while self.backlog_s > self._max_backlog_s and self._r is not None:  # back-pressure
            if self._job is None:
                await self._recognizer()  # still being created
                self._kick()
            await self._idle()
            self._raise_error()
        text = normalize_text(" ".join([*(c.get("text", "") for c in self._committed), self._partial]))
        if not text or text == self._last_partial:
            return None
        self._last_partial = text
        return Transcript(text=text, final=False, at=time.monotonic())

    def flush(self) -> None:
        """Send the audio queued so far to the recogniser now instead of at the next whole batch (the caller has
        gone quiet: by the endpoint only the final is left to compute). Feeding more audio ends it."""
        self._drain = True
        self._kick()

    async def finish(self) -> Transcript:
        """Final result at our endpoint (Vosk's FinalResult); the stream is ready for the next utterance."""
        if self._resampler is not None:
            self._pending += self._resampler.process(AudioFrame(b"", self.engine.sample_rate), last=True).pcm
        if self._r is None and not self._closed and not self._pending:  # nothing heard: no recogniser needed
            self._new_utterance()
            return Transcript(text="", final=True, at=time.monotonic(), confidence=0.0, words=())
        if self._r is None and not self._closed:
            self._r = self.engine._acquire_future()
        r = await self._recognizer()
        queued = self._queued if self._job is not None else None
        if queued is not None and queued[0].cancel():  # our batch still waits behind other calls' batches: its
            self._pending[:0] = queued[1]  # audio goes with the final, which is decoded before any batch
        await self._idle()
        self._raise_error()
        tail = bytes(self._pending)
        self._pending.clear()
        results, final = await self._start_job(FINAL, self._final, r, tail)
        self._committed += results
        base = (self._base_samples if self._base_samples is not None else r.fed_samples) / r.rate
        parts = [*self._committed, final]
        words = tuple(
            Word(w["word"], round(w["start"] - base, 3), round(w["end"] - base, 3), float(w.get("conf", 1.0)))
            for p in parts
            for w in p.get("result", [])
            if not is_non_speech(w["word"])
        )
        text = normalize_text(" ".join(p.get("text", "") for p in parts))
        conf = float(np.mean([w.conf for w in words])) if words else 0.0
        self._new_utterance()
        if not self._hold:  # clean after FinalResult: back to the pool (or recycled) for any call's next utterance
            self._r = None
            self._waiting_for_recognizer = False
            self.engine._give_back(r)
        return Transcript(text=text, final=True, at=time.monotonic(), confidence=conf, words=words)

    async def close(self) -> None:
        """Give a recogniser still held back to the pool (or recycle it)."""
        if self._closed:
            return
        self._closed = True
        e = self.engine
        await self._idle()
        r, self._r, self._error = self._r, None, None
        if isinstance(r, Future) and not r.done():  # still being created: given back once it is
            r.add_done_callback(lambda f: None if f.cancelled() or f.exception() else e._give_back(f.result()))
            r = None
        elif isinstance(r, Future):
            r = None if r.cancelled() or r.exception() else r.result()
        try:
            if r is not None and self._dirty:
                await e._run(e._release, r, True)  # FinalResult first, on a decode thread (never behind a warm-up)
            elif r is not None:
                e._give_back(r)
        finally:
            e._stream_closed()
