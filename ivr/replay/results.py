"""What a replay observed, per turn and per call, in a shape that serialises to the JSON report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class BotTurn:
    """One reply of the bot as the call session recorded it."""

    kind: str = ""  # the input that caused it: start | speech | dtmf | no_input | ...
    caller_text: str = ""  # what the bot heard (ASR text, reference text, or digits)
    input_source: str = ""  # asr | reference | dtmf | ""
    text: str = ""
    intent: str = ""
    slots: dict[str, Any] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    state: str = ""
    end_call: bool = False
    barged_in: bool = False
    latency_ms: float | None = None  # the session's own trace: speech end -> first audio sent
    timing: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class TurnResult:
    """One caller turn (index -1 is the greeting) and everything the bot did until the next turn."""

    index: int
    kind: str  # greeting | say | dtmf | silence | hangup
    input: str  # reference text, digits, "8 s silence", ...
    asr_mode: str = "-"  # reference | asr | dtmf | - (how the caller's input reached the dialogue)
    audio: str = ""  # the audio file played
    bot_turns: list[BotTurn] = field(default_factory=list)
    heard_ms: float | None = None  # caller's speech end (or key press) -> first bot audio heard by the caller
    reply_audio_s: float = 0.0  # how long the bot spoke
    interrupted: bool | None = None  # barge-in turns: did the bot's audio stop while it was talking
    stop_ms: float | None = None  # barge-in: caller speech start -> bot audio stopped
    vad_segments: int | None = None  # utterances the VAD cut from this turn's audio (reference mode)
    bot_hung_up: bool = False  # the bot ended the call after this turn
    cer: float | None = None  # real ASR only: character error rate of what the bot heard vs the reference
    expect: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def reply(self) -> str:
        return "".join(t.text for t in self.bot_turns)

    @property
    def heard(self) -> str:
        return " / ".join(t.caller_text for t in self.bot_turns if t.caller_text)

    @property
    def main(self) -> BotTurn | None:
        """The bot turn that answered this input (first one caused by it, else the first one)."""
        want = {"say": "speech", "dtmf": "dtmf", "silence": "no_input", "greeting": "start"}.get(self.kind)
        for t in self.bot_turns:
            if t.kind == want:
                return t
        return self.bot_turns[0] if self.bot_turns else None

    @property
    def latency_ms(self) -> float | None:
        """The session's pipeline latency of the main bot turn."""
        m = self.main
        return None if m is None else m.latency_ms

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(passed=self.passed, reply=self.reply, heard=self.heard, latency_ms=self.latency_ms)
        return d


@dataclass(slots=True)
class CallResult:
    """One fixture played as one call."""

    fixture: str
    path: str
    via: str
    asr: str
    call_id: str = ""
    description: str = ""
    turns: list[TurnResult] = field(default_factory=list)
    outcome: str = ""
    ended_by: str = ""
    end_reason: str = ""
    actions: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # call-level (outcome, actions, errors)
    error: str = ""  # the call could not be run at all
    duration_s: float = 0.0
    concurrency: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.error and not self.failures and all(t.passed for t in self.turns)

    @property
    def all_failures(self) -> list[str]:
        out = [f"{self.fixture}: {self.error}"] if self.error else []
        for t in self.turns:
            out += t.failures
        return out + self.failures

    def heard_latencies(self) -> list[float]:
        return [t.heard_ms for t in self.turns if t.heard_ms is not None and t.kind != "greeting"]

    def pipeline_latencies(self) -> list[float]:
        return [t.latency_ms for t in self.turns if t.latency_ms is not None and t.kind != "greeting"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "fixture": self.fixture, "path": self.path, "description": self.description, "via": self.via,
            "asr": self.asr, "call_id": self.call_id, "passed": self.passed, "outcome": self.outcome,
            "ended_by": self.ended_by, "end_reason": self.end_reason, "actions": self.actions,
            "failures": self.all_failures, "error": self.error, "duration_s": round(self.duration_s, 3),
            "concurrency": self.concurrency, "notes": self.notes, "turns": [t.as_dict() for t in self.turns],
        }


@dataclass(slots=True)
class LevelStats:
    """Latency percentiles of all calls run at one concurrency level."""

    concurrency: int
    calls: int
    passed: int
    heard: dict[str, float]  # percentiles of caller-heard latency (ms)
    pipeline: dict[str, float]  # percentiles of the session's speech-end -> first-audio-sent (ms)
    wall_s: float


@dataclass(slots=True)
class SuiteResult:
    """A whole replay run (possibly at several concurrency levels)."""

    via: str
    asr: str
    target: str
    calls: list[CallResult] = field(default_factory=list)
    levels: list[LevelStats] = field(default_factory=list)
    started_at: str = ""
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.calls) and all(c.passed for c in self.calls)

    def as_dict(self) -> dict[str, Any]:
        return {
            "via": self.via, "asr": self.asr, "target": self.target, "started_at": self.started_at,
            "wall_s": round(self.wall_s, 3), "passed": self.passed,
            "summary": {"calls": len(self.calls), "passed": sum(c.passed for c in self.calls)},
            "levels": [asdict(lv) for lv in self.levels], "notes": self.notes,
            "calls": [c.as_dict() for c in self.calls],
        }


def char_error_rate(reference: str, hypothesis: str) -> float:
    """Levenshtein distance over characters (spaces ignored) divided by the reference length."""
    ref, hyp = reference.replace(" ", ""), hypothesis.replace(" ", "")
    if not ref:
        return 0.0 if not hyp else 1.0
    prev = list(range(len(hyp) + 1))
    for i, rc in enumerate(ref, 1):
        cur = [i]
        for j, hc in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rc != hc)))
        prev = cur
    return prev[-1] / len(ref)
