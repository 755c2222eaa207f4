"""In-memory shape of a call record, filled in by the call session (or `ivr chat`, or fixture replay)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

# self_served: the bot handled it; transferred: a human took over; callback: a callback ticket was created;
# abandoned: the caller hung up before anything was resolved; failed: an error or a refused call;
# in_progress: written at call start, replaced at the end.
OUTCOMES = ("in_progress", "self_served", "transferred", "callback", "abandoned", "failed")
NOT_SERVICE_ACTIONS = ("end_call", "no_match", "keypad_offered")  # actions that do not count as service


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class TurnRecord:
    """One exchange: what the caller did (speech, DTMF, silence, or nothing for the greeting) and the reply.

    ``speaker`` is "bot" for a bot turn; warm transfer adds "agent" turns (caller/agent lines after the
    hand-over) so a record keeps both the bot part and the human part of the call.
    """

    index: int
    kind: str  # "start" | "speech" | "dtmf" | "no_input" | "end" | "agent" | ...
    at: datetime = field(default_factory=utcnow)
    speaker: str = "bot"
    caller_text: str = ""
    input_source: str = ""  # "asr" | "reference" | "dtmf" | ""
    asr_confidence: float | None = None
    bot_text: str = ""
    intent: str = ""
    confidence: float | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    sentiment: float | None = None
    state: str = ""
    barged_in: bool = False
    segments_played: int | None = None
    latency_ms: float | None = None  # speech end (or key press) -> first bot audio sent
    timing: dict[str, float | None] = field(default_factory=dict)  # TurnTiming.as_dict(), relative ms

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["at"] = self.at.isoformat()
        return d


@dataclass(slots=True)
class CallRecord:
    """Everything kept about one call."""

    call_id: str
    channel: str
    caller: str = ""  # masked before it is stored (the session passes it masked already)
    caller_key: str = ""  # keyed hash of the caller number: repeat callers without storing the number
    language: str = "zh-CN"
    started_at: datetime = field(default_factory=utcnow)
    ended_at: datetime | None = None
    outcome: str = "in_progress"
    end_reason: str = ""  # caller_hangup | bot_hangup | no_input | max_duration | shutdown | error | ...
    ended_by: str = ""  # caller | bot | system
    transfer_reason: str = ""
    asr_mode: str = "asr"  # "asr" | "dtmf" (no model) | "reference" (fixture replay)
    csat: int | None = None
    feedback: str = ""
    feedback_keywords: list[str] = field(default_factory=list)
    recording_path: str = ""
    agent_id: str = ""
    disposition: str = ""
    agent_note: str = ""
    turns: list[TurnRecord] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def handle_time_s(self) -> float | None:
        if self.ended_at is None:
            return None
        return max(0.0, (self.ended_at - self.started_at).total_seconds())

    def add_turn(self, kind: str, **kw: Any) -> TurnRecord:
        """Append a turn with the next index."""
        t = TurnRecord(index=len(self.turns), kind=kind, **kw)
        self.turns.append(t)
        return t

    def dialogue_outcome(self, said: str, tasks_served: int) -> str:
        """The outcome the conversation itself earned (the one "served" rule for calls and chats): what the
        dialogue said when it was "transferred" or "callback"; else ``self_served`` when it completed a task,
        said "resolved" or any turn did a service action; else ``abandoned``."""
        if said in ("transferred", "callback"):
            return said
        served = tasks_served > 0 or said == "resolved" or any(
            a not in NOT_SERVICE_ACTIONS for t in self.turns for a in t.actions)
        return "self_served" if served else "abandoned"

    def latencies_ms(self) -> list[float]:
        return [t.latency_ms for t in self.turns if t.latency_ms is not None]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["started_at"] = self.started_at.isoformat()
        d["ended_at"] = self.ended_at.isoformat() if self.ended_at else None
        d["handle_time_s"] = self.handle_time_s
        d["turns"] = [t.as_dict() for t in self.turns]
        return d
