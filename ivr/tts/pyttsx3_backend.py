"""pyttsx3 backend for platforms whose native driver works: Windows (SAPI5) and macOS (NSSpeechSynthesizer).

Never on Linux: there pyttsx3 drives espeak through a wrapper measured to segfault in ~40 % of processes and
to hang across threads. Never ``say()`` (it needs a sound card): we render to a file and read it back.
pyttsx3 engines are not thread-safe, so all work happens on one dedicated thread.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ivr.audio.files import AudioFileError, read_audio
from ivr.audio.frames import AudioFrame
from ivr.tts.base import TtsError

_DRIVERS = {"win32": "sapi5", "darwin": "nsss"}


class Pyttsx3Backend:
    """:class:`~ivr.tts.base.TtsBackend` over pyttsx3's native Windows/macOS drivers."""

    name = "pyttsx3"

    def __init__(self, language: str = "zh-CN", platform: str | None = None) -> None:
        self.language = language
        platform = platform or sys.platform
        driver = _DRIVERS.get(platform)
        if driver is None:
            raise TtsError(
                f"tts_backend 'pyttsx3' only works on Windows (SAPI5) or macOS, not on {platform}; "
                "use tts_backend = 'espeak'"
            )
        self._driver = driver
        self._suffix = ".aiff" if driver == "nsss" else ".wav"  # NSSpeechSynthesizer always writes AIFF
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivr-pyttsx3")
        self._engine = None
        self._lock = threading.Lock()

    def render(self, text: str, voice: str, speed: int) -> AudioFrame:
        with self._lock:
            return self._thread.submit(self._render, text, voice, speed).result()

    def _render(self, text: str, voice: str, speed: int) -> AudioFrame:
        import pyttsx3  # only imported on Windows/macOS

        if self._engine is None:
            self._engine = pyttsx3.init(self._driver)
        engine = self._engine
        engine.setProperty("rate", speed)
        chosen = _pick_voice(engine.getProperty("voices"), voice, self.language)
        if chosen is not None:
            engine.setProperty("voice", chosen)
        with tempfile.TemporaryDirectory(prefix="ivr-tts-") as tmp:
            out = Path(tmp) / f"speech{self._suffix}"
            engine.save_to_file(text, str(out))
            engine.runAndWait()
            try:
                return read_audio(out, rate=None)
            except AudioFileError as e:
                raise TtsError(f"pyttsx3 ({self._driver}) produced no usable audio: {e}") from None


def _pick_voice(voices: list, wanted: str, language: str) -> str | None:
    """A voice id matching ``wanted`` by id or name, else the first voice for ``language``, else None."""
    w = wanted.lower()
    for v in voices or []:
        if w in (str(v.id).lower(), str(v.name).lower()):
            return v.id
    primary = language.lower().replace("_", "-").split("-")[0]
    for v in voices or []:
        langs = [str(x).lower().replace("_", "-") for x in (getattr(v, "languages", None) or [])]
        if any(x == primary or x.startswith(primary + "-") for x in langs):
            return v.id
    return None
