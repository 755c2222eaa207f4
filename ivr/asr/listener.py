"""The ASR stage of a call: segmenter + streaming recogniser, as one event source.

Audio goes to Vosk only inside utterances (from ``preroll_ms`` before the detected start to our endpoint), so
silence costs no recogniser time and the recogniser's memory grows only with speech.

Early final: once an utterance has been quiet for ``early_final_ms`` less than its endpoint, the recogniser's final
is computed while the endpoint is still being waited for, so at the endpoint the text is ready (the caller hears
the reply that much sooner: Vosk's FinalResult is 20-200 ms). It is speculative: should the caller go on, that
final is thrown away and the utterance so far (with the held quiet frames, then the new speech) is decoded again
from its start, the same audio in the same order, so the text is the one decoded without the early final (an
earlier version split the utterance there instead: CER 0.21 -> 0.53 on a clip with many pauses). Re-decoding
costs ~0.1-0.3 CPU-s per second of speech, so utterances longer than ``REDECODE_MAX_S`` are not speculated on.

Decoded tail (``asr_tail_ms``, the default way): the recogniser gets only the first ``asr_tail_ms`` of a quiet
stretch; what it has queued is sent at once, and later quiet frames are held. If the caller goes on, the held
frames are fed before the new speech (the same audio in the same order: no split, no accuracy cost); at the
endpoint they are dropped, so only the recogniser's final is left to compute (measured: the last batch of quiet
cost 10-130 ms of the reply's wait).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import replace

from ivr.asr.endpoint import ORDER_DIGITS, PHONE_TAIL_DIGITS, EndpointPolicy, EndpointWords, Expectation
from ivr.asr.engine import AsrEngine, AsrStream
from ivr.asr.grammar import GrammarSet, GrammarSwitch, choose
from ivr.asr.vad import Segmenter, VadOptions
from ivr.audio.frames import AudioFrame
from ivr.events import BargeIn, SpeechEnded, SpeechStarted, Transcript, Word

ListenerEvent = SpeechStarted | SpeechEnded | BargeIn | Transcript
REDECODE_MAX_S = 3.0  # no early final for an utterance longer than this: a caller going on costs its re-decode,
# which must stay under the stream's back-pressure limit (AsrStream max_backlog_s, 4 s) or the call's inbound
# audio waits for it (measured at 8 s: 16 callers lost utterances)


class Listener:
    """Push inbound call audio, get events: SpeechStarted, BargeIn, partial Transcripts, then at our endpoint
    SpeechEnded followed by the final Transcript (word times in call pts). ``engine=None`` is DTMF-only mode:
    VAD events only."""

    def __init__(
        self,
        sample_rate: int,
        options: VadOptions,
        engine: AsrEngine | None,
        *,
        grammar: list[str] | None = None,
        grammars: GrammarSet | None = None,
        language: str = "zh-CN",
    ) -> None:
        if engine is not None and engine.sample_rate != sample_rate:
            raise ValueError(f"engine expects {engine.sample_rate} Hz audio, listener gets {sample_rate} Hz")
        self.sample_rate = sample_rate
        self.segmenter = Segmenter(sample_rate, options)
        self.engine = engine
        self.grammar = grammar
        self._stream: AsrStream | None = None
        self._stream_grammar: list[str] | None = None  # the grammar the open stream was made with
        keep_s = (options.preroll_ms + options.min_speech_ms + options.max_gap_ms) / 1000 + 0.5
        self._recent: deque[AudioFrame] = deque()  # input frames covering the last keep_s seconds
        self._keep_s = keep_s
        self._feeding = False
        self._utt_audio_start = 0.0  # call pts of the first sample fed for the current segment
        self._early: asyncio.Task[Transcript] | None = None  # the utterance's final, started before the endpoint
        self._fed: list[AudioFrame] = []  # the utterance's frames given to the recogniser (decoded again on resume)
        self._held: list[AudioFrame] = []  # quiet frames after the early final (fed if the caller goes on)
        self._fed_s = 0.0
        self.redecodes = 0  # early finals thrown away because the caller went on (their audio decoded again)
        self._clock: float | None = None  # pts of the next input sample (first frame's pts + samples seen)
        # What the dialogue expects next (set by the call per reply) and how that moves the endpoint (asr/endpoint.py)
        # Constrained recognition per expectation (ivr.asr.grammar); None: free speech always
        self._grammar_switch = GrammarSwitch(grammars) if grammars is not None else None
        self.expectation = Expectation()
        self.endpointing = EndpointPolicy(base_ms=options.trailing_silence_ms,
                                          words=EndpointWords.for_language(language))

    @property
    def bot_speaking(self) -> bool:
        return self.segmenter.bot_speaking

    @bot_speaking.setter
    def bot_speaking(self, value: bool) -> None:
        self.segmenter.bot_speaking = value

    @property
    def expectation(self) -> Expectation:
        return self._expectation

    @expectation.setter
    def expectation(self, value: Expectation) -> None:
        """What the dialogue waits for next; with grammars, the next utterance's recogniser is constrained to it
        (switched at the next utterance start, never mid-utterance)."""
        self._expectation = value
        if self._grammar_switch is not None:
            self.grammar = self._grammar_switch.next_grammar(_grammar_kind(value))

    @property
    def early_final(self) -> str:
        """``"none"``, ``"running"`` (the recogniser's final for the audio so far is being computed before the
        endpoint) or ``"ready"`` (computed: the endpoint will not wait for the recogniser)."""
        if self._early is None:
            return "none"
        return "ready" if self._early.done() else "running"

    @property
    def decode_jobs(self) -> int:
        """Batches and finals this listener's stream has sent to the decode threads so far."""
        return self._stream.jobs if self._stream is not None else 0

    @property
    def audio_fed_s(self) -> float:
        """Seconds of call audio this listener's stream has given the recogniser so far."""
        return self._stream.audio_s if self._stream is not None else 0.0

    async def open(self) -> None:
        """Take a recogniser from the engine's warm pool now (otherwise done on the first push)."""
        if self.engine is not None and self._stream is not None and self._stream_grammar != self.grammar \
                and not self._feeding:
            await self.close()  # the expected answer changed (ivr.asr.grammar): a recogniser for the new one
        if self.engine is not None and self._stream is None:
            self._stream = await self.engine.open_stream(self.grammar)
            self._stream_grammar = self.grammar

    async def set_grammar(self, grammar: list[str] | None) -> None:
        """Constrain the next utterances to ``grammar`` (None: free speech); switches between utterances."""
        self.grammar = grammar
        if self.engine is not None and self._stream is not None and not self._feeding:
            await self.open()

    async def push(self, frame: AudioFrame, now: float | None = None) -> list[ListenerEvent]:
        """Feed inbound audio; returns the events it produced, in order."""
        events: list[ListenerEvent] = []
        vad_events = self.segmenter.push(frame, now)
        if self.engine is None:
            return list(vad_events)
        if self._clock is None:
            self._clock = frame.pts
        frame = AudioFrame(frame.pcm, frame.sample_rate, self._clock)
        self._clock += frame.duration
        self._remember(frame)
        fed_this_frame = False
        for ev in vad_events:
            events.append(ev)
            if isinstance(ev, SpeechStarted):
                await self.open()
                self._feeding = True
                self._fed, self._fed_s = [], 0.0
                backlog = self._since(ev.pts - self.segmenter.options.preroll_ms / 1000)
                self._utt_audio_start = backlog[0].pts if backlog else frame.pts
                for f in backlog:
                    events += await self._feed(f)
                fed_this_frame = True
            elif isinstance(ev, SpeechEnded):
                if self._feeding and not fed_this_frame and self._early is None and not self._held \
                        and not self._tail_done():
                    await self._feed(frame)  # trailing silence: its partial would only repeat the text
                fed_this_frame = True
                events.append(await self._finish())
        if self._feeding and not fed_this_frame:
            events += await self._take(frame)
        return events

    async def flush(self, now: float | None = None) -> list[ListenerEvent]:
        """End of input: close an open utterance (with its final Transcript)."""
        events: list[ListenerEvent] = list(self.segmenter.flush(now))
        if self.engine is not None and any(isinstance(e, SpeechEnded) for e in events):
            events.append(await self._finish())
        return events

    async def close(self) -> None:
        """Return the recogniser to the pool."""
        if self._early is not None:
            early, self._early = self._early, None
            await asyncio.gather(early, return_exceptions=True)
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.close()

    # --- internals -----------------------------------------------------------------------------------------
    async def _take(self, frame: AudioFrame) -> list[ListenerEvent]:
        """An utterance frame after its first: fed, or held (fed if speech resumes) while the early final runs or
        once the recogniser has had ``asr_tail_ms`` of the trailing quiet; starts the early final once the quiet is
        ``early_final_ms`` short of the endpoint."""
        seg = self.segmenter
        events: list[ListenerEvent] = []
        if self._early is not None:
            if seg.silence_ms > 0:
                self._held.append(frame)
                return []
            await self._resume(frame)
        elif self._held or self._tail_done():
            if seg.silence_ms > 0:
                if not self._held:
                    assert self._stream is not None
                    self._stream.flush()  # decode what it has now: at the endpoint only the final is left
                self._held.append(frame)
                return []
            held, self._held = self._held, []  # the caller went on: the same audio, in order, one segment
            for f in held:
                events += await self._feed(f)
        events += await self._feed(frame)
        lead = self.segmenter.options.early_final_ms
        if lead and seg.silence_ms > 0 and seg.silence_ms >= max(seg.endpoint_ms - lead, min(250, seg.endpoint_ms)) \
                and self._speculate():
            self._early = asyncio.ensure_future(self._finish_segment())
        return events

    def _speculate(self) -> bool:
        """This utterance gets an early final: short enough to be decoded again should the caller go on, and the
        recogniser has CPU to spare (under load a thrown-away final and a re-decode would delay other callers)."""
        return bool(self.segmenter.options.early_final_ms) and self._fed_s <= REDECODE_MAX_S \
            and self.engine is not None and self.engine.idle_enough()

    def _tail_done(self) -> bool:
        """The recogniser has decoded ``asr_tail_ms`` of this quiet (more would only delay its final)."""
        o = self.segmenter.options
        return not self._speculate() and o.asr_tail_ms > 0 and self.segmenter.silence_ms > o.asr_tail_ms

    async def _resume(self, frame: AudioFrame) -> None:
        """The caller went on after the early final: that final is thrown away and the utterance so far, with the
        held frames, is decoded again from its start (then ``frame``): one utterance, as without the early final."""
        assert self._early is not None
        early, self._early = self._early, None
        await asyncio.gather(early, return_exceptions=True)  # the recogniser is clean for the next utterance
        again, self._fed, self._fed_s = [*self._fed, *self._held], [], 0.0
        self._held = []
        self.redecodes += 1
        for f in again:
            await self._feed(f)

    async def _feed(self, frame: AudioFrame) -> list[ListenerEvent]:
        assert self._stream is not None
        self._fed.append(frame)
        self._fed_s += frame.duration
        partial = await self._stream.feed(frame)
        if partial is None:
            return []
        self.segmenter.end_silence_ms = self.endpointing.trailing_ms(self.expectation, partial.text)
        return [partial]

    async def _finish_segment(self) -> Transcript:
        """The recogniser's final for the audio fed since the utterance began, its words in call time."""
        assert self._stream is not None
        t = await self._stream.finish()
        offset = self._utt_audio_start
        words = tuple(Word(w.word, round(w.start + offset, 3), round(w.end + offset, 3), w.conf) for w in t.words)
        return replace(t, words=words)

    async def _finish(self) -> Transcript:
        self._feeding = False
        self.segmenter.end_silence_ms = None
        self._held.clear()  # quiet after what the recogniser needed
        self._fed, self._fed_s = [], 0.0
        if self._early is not None:
            early, self._early = self._early, None
            t = await early
        else:
            t = await self._finish_segment()
        if self._grammar_switch is not None:
            constrained = self._stream_grammar is not None
            self._grammar_switch.heard(t.text, constrained)  # [unk]: free speech for the next attempt
            if constrained:
                t = replace(t, text=choose(t.text, None))
        return replace(t, at=time.monotonic())

    def _remember(self, frame: AudioFrame) -> None:
        self._recent.append(frame)
        while self._recent and frame.pts + frame.duration - self._recent[0].pts > self._keep_s + self._recent[0].duration:
            self._recent.popleft()

    def _since(self, t: float) -> list[AudioFrame]:
        """Recent frames from pts ``t`` on (the first one cut at ``t``)."""
        out = []
        for f in self._recent:
            end = f.pts + f.duration
            if end <= t:
                continue
            if f.pts < t:
                skip = int(round((t - f.pts) * f.sample_rate)) * 2
                f = AudioFrame(f.pcm[skip:], f.sample_rate, f.pts + skip / 2 / f.sample_rate)
            out.append(f)
        return out


def _grammar_kind(exp: Expectation) -> str | None:
    """Expectation -> grammar kind of ivr.asr.grammar (None: free speech)."""
    if exp.kind == "digits":
        return {ORDER_DIGITS: "order_id", PHONE_TAIL_DIGITS: "phone_tail"}.get(exp.digits, "digits")
    return {"yesno": "yesno", "key": "menu"}.get(exp.kind)

