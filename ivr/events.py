"""Typed events that flow between pipeline stages (transport -> call session -> asr/dialog/tts).

They live at the bottom of the package so every layer can import them without importing a higher layer.
Timestamps are ``time.monotonic()`` seconds unless named ``*_pts`` (seconds of call audio).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ivr.audio.frames import AudioFrame


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """VAD saw speech begin. ``pts`` is where in the call's inbound audio it began."""

    pts: float
    at: float


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """VAD endpoint: the utterance is complete (trailing silence reached or max length hit)."""

    start_pts: float
    end_pts: float
    at: float
    audio: AudioFrame
    truncated: bool = False  # True when cut at the maximum utterance length


@dataclass(frozen=True, slots=True)
class BargeIn:
    """Caller speech long enough to interrupt the bot (backchannels and coughs are shorter)."""

    pts: float
    at: float
    speech_ms: int


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    end: float
    conf: float


@dataclass(frozen=True, slots=True)
class Transcript:
    """Recognised text. ``final`` False means a partial result."""

    text: str
    final: bool
    at: float
    confidence: float = 1.0
    words: tuple[Word, ...] = ()
    source: str = "asr"  # "asr" or "reference" (fixture replay injects reference text)


@dataclass(frozen=True, slots=True)
class DtmfDigits:
    """Keypad digits (0-9, *, #, A-D) from RFC 4733, SIP INFO, WebRTC or a console."""

    digits: str
    at: float


@dataclass(frozen=True, slots=True)
class Hangup:
    """Either side ended the call."""

    by: str  # "caller" | "bot" | "system"
    reason: str = ""
    at: float = 0.0


@dataclass(slots=True)
class TurnTiming:
    """Per-turn latency trace; each hop stamps its field (monotonic seconds)."""

    speech_end: float | None = None
    asr_final: float | None = None
    dialog_decision: float | None = None
    tts_first_audio_queued: float | None = None
    first_audio_sent: float | None = None
    extra: dict[str, float] = field(default_factory=dict)

    def latency_ms(self) -> float | None:
        """Speech end (or input) to first audio sent."""
        if self.speech_end is None or self.first_audio_sent is None:
            return None
        return (self.first_audio_sent - self.speech_end) * 1000.0

    def as_dict(self) -> dict[str, float | None]:
        return {
            "speech_end": self.speech_end,
            "asr_final": self.asr_final,
            "dialog_decision": self.dialog_decision,
            "tts_first_audio_queued": self.tts_first_audio_queued,
            "first_audio_sent": self.first_audio_sent,
            **self.extra,
        }
