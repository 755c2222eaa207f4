"""Timers and switches of one call (documented defaults; the service takes them from :class:`ivr.config.Settings`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ivr.config import Settings


@dataclass(frozen=True)
class SessionOptions:
    """Timers and switches of one call (defaults follow :class:`ivr.config.Settings`)."""

    no_input_timeout_s: float = 7.0
    max_no_input: int = 3
    max_call_s: float = 900.0
    end_grace_s: float = 20.0  # a goodbye may take this long before the line is cut anyway
    connect_timeout_s: float = 20.0  # the port's ready() (WebRTC: ICE/DTLS) must carry media within this
    record_audio: bool = False
    recordings_dir: Path | None = None
    caller_key_secret: str = ""
    tick_s: float = 0.1

    @classmethod
    def from_settings(cls, s: Settings) -> SessionOptions:
        return cls(
            no_input_timeout_s=s.no_input_timeout_s, max_no_input=s.max_no_input, max_call_s=s.max_call_s,
            record_audio=s.record_calls, recordings_dir=s.data_dir / "recordings", caller_key_secret=s.secret_key,
        )
