"""Voice activity and endpointing: webrtcvad frames -> SpeechStarted / SpeechEnded / BargeIn events.

The endpoint decision is ours (Vosk 0.3.45 exposes no endpointer tuning): an utterance starts once
``min_speech_ms`` of voiced frames have accumulated (its start is stamped at the first voiced frame) and ends after
``trailing_silence_ms`` of unvoiced frames (its end is stamped at the last voiced frame).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import webrtcvad

from ivr.audio.frames import AudioFrame
from ivr.audio.resample import Resampler
from ivr.config import Settings
from ivr.events import BargeIn, SpeechEnded, SpeechStarted

VAD_RATES = (8000, 16000)
VadEvent = SpeechStarted | SpeechEnded | BargeIn

# webrtcvad keeps calling frames "speech" for a while after speech stops (its hang-over, vad_core.c
# kOverHangMax2*: frames per mode for 10/20/30 ms frames). We subtract it so that end times, trailing silence and
# speech lengths mean what they say (measured: without this, ends come ~100-160 ms late).
_HANGOVER_FRAMES = {0: (14, 7, 5), 1: (14, 7, 5), 2: (9, 5, 3), 3: (9, 5, 3)}


# Barge-in need not wait for the hang-over: a voiced frame clearly louder than the line's background is speech
# the caller is making now, not webrtcvad's hang-over (which flags the quiet frames after speech as voiced).
# Counting only such frames, ``barge_in_min_ms`` of them is that much real speech, known as it happens instead of
# ``hangover_ms`` later. LOUD_OVER_FLOOR_DB above the background (tracked on unvoiced frames), and within
# LOUD_UNDER_PEAK_DB of the utterance's loudest frame (a decaying tail is not speech effort), never below
# LOUD_MIN_DBFS (on a digitally silent line the floor says nothing).
LOUD_OVER_FLOOR_DB = 12.0
LOUD_UNDER_PEAK_DB = 25.0
LOUD_MIN_DBFS = -60.0
# Speech is never this faint: a voiced frame under SPEECH_MIN_DBFS (RMS ~184 of 32768) is not caller speech but a
# recording's faint tail (RMS 20-80 for ~0.6 s after the last word in recorded speech), room tone or a codec's
# residue. On a line with background noise webrtcvad already calls such frames unvoiced; on a digitally silent
# line (a browser with noise suppression sends zeros between words) it calls them voiced, and the endpoint waited
# for the tail to end (measured +0.4-0.6 s). Measured on the recorded Korean clips in ../shared: the median voiced
# frame is -25..-33 dBFS, the loudest -12..-20; a faint tail of RMS 80 has frames up to -47 dBFS. A gap that
# starts with such a faint frame is real silence, so the hang-over allowance is not added to it. Only applied once
# an utterance has started (an onset's first frames may be fainter; starting and barge-in are unchanged).
SPEECH_MIN_DBFS = -45.0
_FLOOR_START_DBFS = -70.0
_FLOOR_RISE = 0.05  # per unvoiced frame: the floor follows a louder background slowly, a quieter one at once


def frame_dbfs(pcm: bytes) -> float:
    """Level of 16-bit little-endian mono PCM in dBFS (-120 for silence)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    ms = float(np.mean(x * x)) if x.size else 0.0
    return 10 * math.log10(ms / (32768.0 * 32768.0)) if ms > 0 else -120.0


def hangover_ms(aggressiveness: int, frame_ms: int) -> int:
    """Voiced time webrtcvad appends after real speech ends."""
    return _HANGOVER_FRAMES[aggressiveness][(10, 20, 30).index(frame_ms)] * frame_ms


@dataclass(frozen=True)
class VadOptions:
    """Turn-taking knobs (defaults match :class:`ivr.config.Settings`)."""

    aggressiveness: int = 2  # webrtcvad mode 0..3 (3 = most eager to call a frame non-speech)
    min_speech_ms: int = 200  # voiced time before an utterance counts; shorter bursts are noise
    trailing_silence_ms: int = 500  # unvoiced time that ends an utterance (Alibaba 400, Tencent 700)
    max_utterance_ms: int = 15000  # an utterance is cut (``truncated``) at this length
    barge_in_min_ms: int = 300  # voiced time while the bot speaks before BargeIn (backchannels are shorter)
    preroll_ms: int = 300  # audio kept before the detected start (in SpeechEnded.audio and for the ASR)
    frame_ms: int = 20  # webrtcvad frame: 10, 20 or 30
    max_gap_ms: int = 120  # an unvoiced gap longer than this discards a not-yet-started candidate
    early_final_ms: int = 200  # the recogniser's final starts this long before the endpoint (ivr.asr.listener); 0: off
    asr_tail_ms: int = 300  # quiet decoded after the speech; more is held, fed only if speech resumes; 0: all fed

    def __post_init__(self) -> None:
        if self.aggressiveness not in (0, 1, 2, 3):
            raise ValueError(f"VAD aggressiveness must be 0..3, got {self.aggressiveness}")
        if self.frame_ms not in (10, 20, 30):
            raise ValueError(f"VAD frame must be 10, 20 or 30 ms, got {self.frame_ms}")
        if self.early_final_ms < 0:
            raise ValueError("early_final_ms must be 0 or more")
        if self.asr_tail_ms < 0:
            raise ValueError("asr_tail_ms must be 0 or more")
        for name in ("min_speech_ms", "trailing_silence_ms", "max_utterance_ms"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")

    @classmethod
    def from_settings(cls, s: Settings) -> VadOptions:
        """Options from the validated settings."""
        return cls(
            aggressiveness=s.vad_aggressiveness,
            min_speech_ms=s.vad_min_speech_ms,
            trailing_silence_ms=s.vad_trailing_silence_ms,
            max_utterance_ms=s.vad_max_utterance_ms,
            barge_in_min_ms=s.barge_in_min_ms,
            early_final_ms=s.asr_early_final_ms,
            asr_tail_ms=s.asr_tail_ms,
        )


class Segmenter:
    """Streaming endpointer for one direction of one call.

    Accepts frames of any size at any rate (all frames of one stream share the rate); audio is resampled to
    16 kHz for webrtcvad when it is not 8 or 16 kHz, and re-framed into ``frame_ms`` frames. Times (``pts``) are
    seconds of stream audio, counted from the first frame's ``pts``.
    """

    def __init__(self, sample_rate: int, options: VadOptions = VadOptions()) -> None:
        self.sample_rate = sample_rate
        self.options = options
        self.vad_rate = sample_rate if sample_rate in VAD_RATES else 16000
        self.bot_speaking = False
        self.end_silence_ms: int | None = None  # this utterance's trailing silence, when endpointing moved it
        self._vad = webrtcvad.Vad(options.aggressiveness)
        self._frame_bytes = self.vad_rate * options.frame_ms // 1000 * 2
        self._frame_s = options.frame_ms / 1000.0
        self._hang_ms = hangover_ms(options.aggressiveness, options.frame_ms)
        self.reset()

    # --- public --------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything (a new stream starts at the next frame)."""
        self._resampler = None if self.vad_rate == self.sample_rate else Resampler(self.sample_rate, self.vad_rate)
        self._pending = bytearray()  # VAD-rate bytes not yet framed
        self._t0: float | None = None  # pts of the first input sample
        self._nframes = 0  # VAD frames processed
        self._audio = bytearray()  # input-rate audio from _audio_t onward (preroll + current utterance)
        self._audio_t = 0.0
        self._input_samples = 0
        self._state = "idle"  # idle | candidate | speech
        self._start = 0.0
        self._start_index = 0
        self._last_voiced_end = 0.0
        self._voiced_ms = 0
        self._gap_ms = 0
        self._gap_exact = False  # the current gap began with a faint frame: no webrtcvad hang-over in it
        self._barged = False
        self._loud_ms = 0  # voiced frames clearly above the background (see LOUD_OVER_FLOOR_DB)
        self._peak_db = -120.0  # loudest frame of the current candidate/utterance
        self._floor_db = _FLOOR_START_DBFS  # background level, from unvoiced frames

    @property
    def in_speech(self) -> bool:
        """True between SpeechStarted and SpeechEnded."""
        return self._state == "speech"

    @property
    def silence_ms(self) -> int:
        """Inside an utterance: how long it has been quiet (what the endpoint compares), 0 while voiced."""
        if self._state != "speech" or self._gap_ms == 0:
            return 0
        return self._gap_ms + self._gap_hang_ms()

    @property
    def endpoint_ms(self) -> int:
        """The current utterance's trailing silence (moved by endpointing, else the option's)."""
        return self.end_silence_ms or self.options.trailing_silence_ms

    def push(self, frame: AudioFrame, now: float | None = None) -> list[VadEvent]:
        """Feed audio; returns the events it completed, in order."""
        if frame.sample_rate != self.sample_rate:
            raise ValueError(f"segmenter expects {self.sample_rate} Hz audio, got {frame.sample_rate} Hz")
        if self._t0 is None:
            self._t0 = frame.pts
            self._audio_t = frame.pts
        self._audio += frame.pcm
        self._input_samples += frame.samples
        vad_pcm = frame.pcm if self._resampler is None else self._resampler.process(frame).pcm
        self._pending += vad_pcm
        at = time.monotonic() if now is None else now
        events: list[VadEvent] = []
        n = self._frame_bytes
        while len(self._pending) >= n:
            chunk = bytes(self._pending[:n])
            del self._pending[:n]
            voiced = self._vad.is_speech(chunk, self.vad_rate)
            events += self._on_frame(voiced, at, frame_dbfs(chunk))
        if self._state == "idle":
            self._trim_audio()
        return events

    def flush(self, now: float | None = None) -> list[VadEvent]:
        """End of stream: close an open utterance (a candidate shorter than ``min_speech_ms`` is dropped)."""
        at = time.monotonic() if now is None else now
        events: list[VadEvent] = []
        if self._state == "speech":
            events.append(self._end(at, truncated=False))
        self._state = "idle"
        return events

    # --- internals -----------------------------------------------------------------------------------
    def _on_frame(self, voiced: bool, at: float, level_db: float = -120.0) -> list[VadEvent]:
        o = self.options
        assert self._t0 is not None
        index = self._nframes
        self._nframes += 1
        start = self._t0 + index * self._frame_s
        end = self._t0 + (index + 1) * self._frame_s
        events: list[VadEvent] = []
        faint = voiced and level_db < SPEECH_MIN_DBFS and self._state == "speech"
        if faint:
            voiced = False
        if not voiced:
            f = self._floor_db
            self._floor_db = level_db if level_db < f else f + _FLOOR_RISE * (level_db - f)
        if self._state == "idle":
            if voiced:
                self._state, self._start, self._last_voiced_end = "candidate", start, end
                self._start_index = index
                self._voiced_ms, self._gap_ms, self._barged = o.frame_ms, 0, False
                self._loud_ms, self._peak_db = 0, level_db
        elif voiced:
            self._voiced_ms += o.frame_ms
            self._gap_ms = 0
            self._last_voiced_end = end
        else:
            if self._gap_ms == 0:
                self._gap_exact = faint
            self._gap_ms += o.frame_ms
            if self._state == "candidate" and self._gap_ms > o.max_gap_ms:
                self._state = "idle"
                return events
        if (voiced or faint) and self._state != "idle":
            self._peak_db = max(self._peak_db, level_db)
            loud_from = max(self._floor_db + LOUD_OVER_FLOOR_DB, self._peak_db - LOUD_UNDER_PEAK_DB, LOUD_MIN_DBFS)
            if level_db >= loud_from:
                self._loud_ms += o.frame_ms
        if self._state == "candidate" and self._voiced_ms >= o.min_speech_ms + self._hang_ms:
            self._state = "speech"
            events.append(SpeechStarted(pts=self._start, at=at))
        if self._state == "speech":
            # barge_in_min_ms of loud frames, or (on a line too noisy to tell) of voiced frames past the hang-over
            speech_ms = max(self._loud_ms, self._voiced_ms - self._hang_ms)
            if self.bot_speaking and not self._barged and speech_ms >= o.barge_in_min_ms:
                self._barged = True
                events.append(BargeIn(pts=self._start, at=at, speech_ms=speech_ms))
            if self._gap_ms + self._gap_hang_ms() >= (self.end_silence_ms or o.trailing_silence_ms):
                events.append(self._end(at, truncated=False))
            elif (index + 1 - self._start_index) * o.frame_ms >= o.max_utterance_ms:
                self._last_voiced_end = end
                events.append(self._end(at, truncated=True))
        return events

    def _gap_hang_ms(self) -> int:
        """webrtcvad's hang-over hidden at the end of the last voiced run (none when the gap began faint)."""
        return 0 if self._gap_exact else self._hang_ms

    def _end(self, at: float, truncated: bool) -> SpeechEnded:
        o = self.options
        if not truncated and self._gap_ms > 0:  # the voiced run ended with webrtcvad's hang-over
            hang = self._gap_hang_ms() / 1000
            self._last_voiced_end = max(self._start + o.min_speech_ms / 1000, self._last_voiced_end - hang)
        audio_from = max(self._audio_t, self._start - o.preroll_ms / 1000)
        heard_until = self._audio_t + len(self._audio) / 2 / self.sample_rate
        audio_to = min(heard_until, self._last_voiced_end + o.trailing_silence_ms / 1000)
        audio = self._slice(audio_from, audio_to)
        ev = SpeechEnded(start_pts=self._start, end_pts=self._last_voiced_end, at=at, audio=audio, truncated=truncated)
        self._state = "idle"
        self._voiced_ms = self._gap_ms = 0
        self.end_silence_ms = None
        return ev

    def _slice(self, t_from: float, t_to: float) -> AudioFrame:
        i = max(0, round((t_from - self._audio_t) * self.sample_rate)) * 2
        j = max(i, round((t_to - self._audio_t) * self.sample_rate) * 2)
        return AudioFrame(bytes(self._audio[i:j]), self.sample_rate, self._audio_t + i / 2 / self.sample_rate)

    def _trim_audio(self) -> None:
        """While idle keep only the pre-roll (plus a candidate's audio) of input audio."""
        keep_s = self.options.preroll_ms / 1000 + (self.options.min_speech_ms + self.options.max_gap_ms) / 1000 + 0.1
        keep = int(keep_s * self.sample_rate) * 2
        if len(self._audio) > 2 * keep:
            drop = len(self._audio) - keep
            del self._audio[:drop]
            self._audio_t += drop / 2 / self.sample_rate
