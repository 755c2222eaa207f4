"""Optional stereo recording of a call (caller left, bot right) and its retention sweep.

Both directions are placed by arrival time on the call's clock, so what the caller said over the bot (a
barge-in) sits exactly where it happened. Audio is written to disk in blocks as the call goes, not held in
memory for the whole call.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import soundfile as sf

from ivr.audio.frames import AudioFrame
from ivr.audio.resample import RateConverter

log = logging.getLogger(__name__)

_BLOCK_S = 1.0  # write once both channels have this much beyond what is on disk
_MAX_LAG_S = 2.0  # a silent/absent channel is padded with zeros after this long


class StereoRecorder:
    """Writes ``path`` as 16-bit stereo WAV at ``rate``: left = caller, right = bot."""

    def __init__(self, path: Path, rate: int, clock=time.monotonic) -> None:
        self.path = path
        self.rate = rate
        self._clock = clock
        self._t0 = clock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = sf.SoundFile(str(path), mode="w", samplerate=rate, channels=2, subtype="PCM_16", format="WAV")
        self._buf = [bytearray(), bytearray()]  # per channel, s16 bytes not yet written
        self._written = 0  # samples per channel already on disk
        self._to_rate = (RateConverter(rate), RateConverter(rate))  # caller, bot channel
        self.closed = False

    def caller(self, frame: AudioFrame) -> None:
        self._add(0, frame)

    def bot(self, frame: AudioFrame) -> None:
        self._add(1, frame)

    def _add(self, ch: int, frame: AudioFrame) -> None:
        if self.closed:
            return
        frame = self._to_rate[ch](frame)
        # Place by arrival time: pad with silence if this channel fell behind the clock (a gap in the stream).
        now_pos = int((self._clock() - self._t0) * self.rate) - frame.samples
        have = self._written + len(self._buf[ch]) // 2
        if now_pos > have + self.rate // 10:  # more than 100 ms behind: a real gap
            self._buf[ch].extend(bytes(2 * (now_pos - have)))
        self._buf[ch].extend(frame.pcm)
        self._drain(final=False)

    def _drain(self, final: bool) -> None:
        n0, n1 = len(self._buf[0]) // 2, len(self._buf[1]) // 2
        if not final:
            lag = abs(n0 - n1)
            if lag > _MAX_LAG_S * self.rate:  # one side is silent/absent: pad it
                short = 0 if n0 < n1 else 1
                self._buf[short].extend(bytes(2 * lag))
                n0, n1 = len(self._buf[0]) // 2, len(self._buf[1]) // 2
            n = min(n0, n1)
            if n < _BLOCK_S * self.rate:
                return
        else:
            n = max(n0, n1)
            for ch, have in ((0, n0), (1, n1)):
                self._buf[ch].extend(bytes(2 * (n - have)))
        if n == 0:
            return
        left = np.frombuffer(bytes(self._buf[0][: 2 * n]), dtype="<i2")
        right = np.frombuffer(bytes(self._buf[1][: 2 * n]), dtype="<i2")
        self._file.write(np.stack([left, right], axis=1))
        del self._buf[0][: 2 * n]
        del self._buf[1][: 2 * n]
        self._written += n

    def close(self) -> Path:
        """Flush and close (idempotent); returns the file path."""
        if not self.closed:
            self.closed = True
            try:
                self._drain(final=True)
            finally:
                self._file.close()
        return self.path


def recording_path(root: Path, call_id: str, when: datetime | None = None) -> Path:
    """<root>/<YYYY-MM-DD>/<call_id>.wav (UTC date), so retention can drop whole days."""
    day = (when or datetime.now(UTC)).strftime("%Y-%m-%d")
    safe = "".join(c for c in call_id if c.isalnum() or c in "-_") or "call"
    return root / day / f"{safe}.wav"


def purge_recordings(root: Path, retention_days: int, now: datetime | None = None) -> int:
    """Delete recordings older than ``retention_days`` (by file time); returns how many were removed."""
    if not root.is_dir():
        return 0
    cutoff = ((now or datetime.now(UTC)) - timedelta(days=retention_days)).timestamp()
    removed = 0
    for f in root.glob("*/*.wav"):
        try:
            if f.stat().st_mtime < cutoff:
                f.unlink()
                removed += 1
        except OSError as e:
            log.warning("cannot remove old recording %s: %s", f, e)
    for d in root.iterdir():
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()
    return removed
