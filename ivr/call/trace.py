"""A turn's time as the caller lives it: from the caller's last voiced audio to the bot's first audio sent.

The VAD decides that the caller has finished ``trailing_silence_ms`` after the last word (and later again when the
call's audio path is behind), so a trace that starts at that decision hides most of what the caller waits for.
:class:`ArrivalLog` remembers when each inbound frame arrived, so the turn's reference point is the arrival of the
frame that held the caller's last voiced audio, and every hop after it is a stage:

==============  =================================================================================
jitter_buffer   packet arrival at the transport (``frame.meta["rx_at"]`` when the port stamps it)
                -> the session took the frame from the port
resample        -> the frame was converted to the listener's rate
vad             -> the VAD's endpoint decision (its trailing silence, plus any backlog)
asr_final       -> the final transcript
dialogue        -> the dialogue's reply
tts             -> the reply's first synthesised audio queued
playout         -> that audio's first frame sent to the caller
==============  =================================================================================

The stages add up to the end-to-end figure (``TurnTiming.latency_ms``) by construction.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ivr.audio.frames import AudioFrame
from ivr.events import SpeechEnded, TurnTiming

STAGES = ("jitter_buffer", "resample", "vad", "asr_final", "dialogue", "tts", "playout")
_KEEP_S = 30.0  # arrivals kept: longer than an utterance's trailing silence plus any backlog


@dataclass(frozen=True, slots=True)
class Arrival:
    start: float  # listener-stream time of the frame's first sample
    end: float
    rx: float  # arrival at the transport (or at the session when the port does not stamp frames)
    received: float  # the session took it from the port
    resampled: float  # converted to the listener's rate, about to be pushed


class ArrivalLog:
    """Arrival times of the frames pushed into a listener, by the listener's stream time (its first frame's pts,
    then counted in samples: the same clock the segmenter stamps ``SpeechEnded.end_pts`` with)."""

    def __init__(self) -> None:
        self._log: deque[Arrival] = deque()
        self._clock: float | None = None

    def add(self, frame: AudioFrame, rx: float, received: float, resampled: float) -> None:
        if self._clock is None:
            self._clock = frame.pts
        start = self._clock
        self._clock += frame.duration
        self._log.append(Arrival(start, self._clock, rx, received, resampled))
        while self._log and self._clock - self._log[0].end > _KEEP_S:
            self._log.popleft()

    def at(self, pts: float) -> Arrival | None:
        """The frame that held stream time ``pts`` (the last sample before it)."""
        for a in reversed(self._log):
            if a.start < pts <= a.end + 1e-9:
                return a
        return None

    def stamp(self, timing: TurnTiming, ev: SpeechEnded) -> None:
        """Start the turn at the arrival of the caller's last voiced audio; the VAD decision is a stage."""
        a = self.at(ev.end_pts)
        timing.extra["vad_end"] = ev.at
        if a is None:  # not logged (a listener on another clock): the decision is all we know
            timing.speech_end = ev.at
            return
        timing.speech_end = a.rx
        timing.extra["received"] = a.received
        timing.extra["resampled"] = a.resampled


def stages_ms(t: TurnTiming) -> dict[str, float]:
    """Per-stage milliseconds of a finished turn (stages without both stamps are left out)."""
    marks = [t.speech_end, t.extra.get("received"), t.extra.get("resampled"), t.extra.get("vad_end"),
             t.asr_final, t.dialog_decision, t.tts_first_audio_queued, t.first_audio_sent]
    out: dict[str, float] = {}
    prev = marks[0]
    for name, mark in zip(STAGES, marks[1:], strict=True):
        if mark is None or prev is None:
            continue
        out[name] = round((mark - prev) * 1000.0, 1)
        prev = mark
    return out
