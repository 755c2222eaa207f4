"""A turn's time as the caller lives it: from the caller's last loud audio to the bot's first audio on the wire.

The VAD decides that the caller has finished ``trailing_silence_ms`` after the last word (and later again when the
call's audio path is behind), so a trace that starts at that decision hides most of what the caller waits for.
:class:`ArrivalLog` remembers when each inbound frame arrived and whether it was loud, so the turn's reference
point is the arrival of the caller's last loud frame (above :data:`LOUD_DBFS`, the level a listener, and the
caller-side measures ``ivr bench calls --wire`` and the WebRTC probe, count as speech; the VAD also counts the
faint tail of a word, a few hundred ms of it on recorded speech; without a loud frame in the utterance, the
VAD's own end), and every hop after it is a stage:

==============  =================================================================================
jitter_buffer   packet arrival at the transport (``frame.meta["rx_at"]`` when the port stamps it)
                -> the session took the frame from the port
resample        -> the frame was converted to the listener's rate
vad             -> the VAD's endpoint decision (its trailing silence, plus any backlog)
asr_final       -> the final transcript
dialogue        -> the dialogue's reply
tts             -> the reply's first synthesised audio queued
playout         -> that audio's first frame on the wire: the network send of the packet holding its first
                sample (SIP: the RTP clock's tick, after what its queue held; WebRTC: aiortc pulling it from
                the track to encode), as the port reports it (``ivr.call.voice``); ports that do not
                report it: the hand-over to the port
==============  =================================================================================

The reply's quiet TTS lead-in is trimmed before playout (``ivr.audio.trim``), so its first frame is audible.

The stages add up to the end-to-end figure (``TurnTiming.latency_ms``) by construction.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ivr.audio.frames import AudioFrame
from ivr.events import SpeechEnded, TurnTiming

STAGES = ("jitter_buffer", "resample", "vad", "asr_final", "dialogue", "tts", "playout")
MARKS = ("speech_end", "received", "resampled", "vad_end", "asr_final", "dialog_decision", "tts_first_audio_queued",
         "first_audio_sent")  # the stamps between the stages, in order (a record's ``timing`` keys)
LOUD_DBFS = -40.0  # a frame this loud is speech to a listener (line noise is ~-55 dBFS, speech -35..-10)
_LOOKBACK_S = 2.0  # the last loud frame is looked for this far before the VAD's end of speech
_KEEP_S = 30.0  # arrivals kept: longer than an utterance's trailing silence plus any backlog


@dataclass(frozen=True, slots=True)
class Arrival:
    start: float  # listener-stream time of the frame's first sample
    end: float
    rx: float  # arrival at the transport (or at the session when the port does not stamp frames)
    received: float  # the session took it from the port
    resampled: float  # converted to the listener's rate, about to be pushed
    loud: bool = False  # above LOUD_DBFS


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
        self._log.append(Arrival(start, self._clock, rx, received, resampled, frame.rms_dbfs() > LOUD_DBFS))
        while self._log and self._clock - self._log[0].end > _KEEP_S:
            self._log.popleft()

    def at(self, pts: float) -> Arrival | None:
        """The frame that held stream time ``pts`` (the last sample before it)."""
        for a in reversed(self._log):
            if a.start < pts <= a.end + 1e-9:
                return a
        return None

    def last_loud(self, pts: float) -> Arrival | None:
        """The last loud frame that started before ``pts``, within :data:`_LOOKBACK_S` of it."""
        for a in reversed(self._log):
            if pts - a.end > _LOOKBACK_S:
                return None
            if a.start < pts and a.loud:
                return a
        return None

    def stamp(self, timing: TurnTiming, ev: SpeechEnded) -> None:
        """Start the turn at the arrival of the caller's last loud audio (else the VAD's last voiced audio); the
        VAD decision is a stage."""
        a = self.last_loud(ev.end_pts) or self.at(ev.end_pts)
        timing.extra["vad_end"] = ev.at
        if a is None:  # not logged (a listener on another clock): the decision is all we know
            timing.speech_end = ev.at
            return
        timing.speech_end = a.rx
        timing.extra["received"] = a.received
        timing.extra["resampled"] = a.resampled


def record_stages_ms(timing: dict[str, float | None]) -> dict[str, float]:
    """Per-stage milliseconds from a stored turn's ``timing`` (relative ms, :data:`MARKS` keys)."""
    out: dict[str, float] = {}
    prev = timing.get(MARKS[0])
    for name, key in zip(STAGES, MARKS[1:], strict=True):
        mark = timing.get(key)
        if mark is None or prev is None:
            continue
        out[name] = round(mark - prev, 1)
        prev = mark
    return out


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
