"""Speech synthesis. The call layer uses :func:`get_tts`; everything else here is implementation.

Backends: libespeak-ng driven directly (default, every platform with libespeak-ng) and pyttsx3 (Windows/macOS
native voices only). See docs/tts.md.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ivr.tts.base import TtsBackend, TtsEngine, TtsError
from ivr.tts.cache import PromptCache
from ivr.tts.engine import SpeechEngine, check_rate, shared_executor
from ivr.tts.recorded import RecordedPrompts

if TYPE_CHECKING:
    from ivr.config import Settings

__all__ = ["SpeechEngine", "TtsBackend", "TtsEngine", "TtsError", "get_tts", "make_backend", "check_rate"]

_engines: dict[tuple, SpeechEngine] = {}
_lock = threading.Lock()
_cache = PromptCache()


def make_backend(name: str, language: str = "zh-CN") -> TtsBackend:
    """Construct the backend called ``name`` ('espeak' or 'pyttsx3'); TtsError if it cannot run here."""
    if name == "espeak":
        from ivr.tts.espeak import EspeakBackend

        return EspeakBackend()
    if name == "pyttsx3":
        from ivr.tts.pyttsx3_backend import Pyttsx3Backend

        return Pyttsx3Backend(language)
    raise TtsError(f"unknown TTS backend {name!r}; use 'espeak' or 'pyttsx3'")


def get_tts(settings: Settings | None = None) -> TtsEngine:
    """The process-wide engine for these settings (backend, voice, speed, prompts_dir), created once.

    The voice is checked here, so a bad ``tts_voice`` fails at start-up with one clear line (TtsError).
    """
    if settings is None:
        from ivr.config import get_settings

        settings = get_settings()
    custom = Path(settings.data_dir) / "custom" / "prompts"  # the shop's recordings (ivr.lang.custom)
    prompts_dir = settings.prompts_dir or (custom if custom.is_dir() else None)
    key = (settings.tts_backend, settings.tts_voice, settings.tts_speed, str(prompts_dir) if prompts_dir else None)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            backend = make_backend(settings.tts_backend, settings.language)
            check = getattr(backend, "check_voice", None)
            if check is not None:
                check(settings.tts_voice)
            engine = SpeechEngine(
                backend,
                voice=settings.tts_voice,
                speed=settings.tts_speed,
                recorded=RecordedPrompts(prompts_dir),
                cache=_cache,
                executor=shared_executor(settings.asr_workers),
            )
            _engines[key] = engine
        return engine
