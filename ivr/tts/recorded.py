"""Recorded-prompt overrides: ``<prompts_dir>/<prompt_id>.wav`` replaces TTS for that prompt id.

Any WAV/FLAC the shop records (any rate, width or channel count) is read with
:func:`ivr.audio.files.read_audio` and converted to the call's rate; conversions are cached and refreshed
when the file changes. A missing or damaged file never silences a call: TTS speaks the prompt instead.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

from ivr.audio.files import AudioFileError, read_audio
from ivr.audio.frames import AudioFrame

log = logging.getLogger(__name__)

_PROMPT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
EXTENSIONS = (".wav", ".flac")


class RecordedPrompts:
    """Looks up recorded prompts in one directory (``None`` = no recordings)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = Path(directory) if directory else None
        self._cache: dict[tuple[str, int], tuple[tuple[int, int], AudioFrame]] = {}
        self._bad: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()
        if self.directory is not None and not self.directory.is_dir():
            log.warning("prompts_dir %s is not a directory: recorded prompts disabled, TTS speaks every prompt",
                        self.directory)

    def path_for(self, prompt_id: str) -> Path | None:
        """The recording file for ``prompt_id`` if one exists."""
        if self.directory is None or not _PROMPT_ID.match(prompt_id) or ".." in prompt_id:
            return None
        for ext in EXTENSIONS:
            p = self.directory / f"{prompt_id}{ext}"
            if p.is_file():
                return p
        return None

    def load(self, prompt_id: str, rate: int) -> AudioFrame | None:
        """The recording at ``rate`` (blocking; call from a worker thread), or None to fall back to TTS."""
        path = self.path_for(prompt_id)
        if path is None:
            return None
        try:
            st = path.stat()
        except OSError:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        key = (prompt_id, rate)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == stamp:
                return hit[1]
            if self._bad.get(prompt_id) == stamp:
                return None
        try:
            frame = read_audio(path, rate)
        except AudioFileError as e:
            log.warning("recorded prompt %s unusable, speaking it with TTS instead: %s", prompt_id, e)
            with self._lock:
                self._bad[prompt_id] = stamp
            return None
        frame = AudioFrame(frame.pcm, frame.sample_rate, 0.0, {"source": "recorded", "path": str(path)})
        with self._lock:
            self._cache[key] = (stamp, frame)
            self._bad.pop(prompt_id, None)
        return frame
