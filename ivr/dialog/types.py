"""The dialogue's contract with the layers around it (call session, chat console, fixture replay).

The call session feeds it caller input (text from ASR, DTMF digits, no-input timeouts, barge-in reports) and
gets :class:`BotReply` objects back: what to say (segments, so a barge-in can be mapped to what was played),
what was done (action names), and whether to end or transfer the call. The manager is synchronous and
side-effect free apart from the shop service it calls; the session runs it off the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class NluResult:
    """What the NLU understood from one caller utterance."""

    text: str
    intent: str
    confidence: float
    slots: dict[str, Any] = field(default_factory=dict)
    explanation: dict[str, Any] = field(default_factory=dict)  # for `ivr nlu explain`


@dataclass(frozen=True, slots=True)
class Segment:
    """One sentence of a reply. ``prompt_id`` names a static prompt (recorded-prompt overrides, TTS cache)."""

    text: str
    prompt_id: str | None = None


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """Hand the call to a human. ``handoff`` is the structured context the agent's screen shows."""

    reason: str
    priority: int = 0  # higher first; strong anger / VIP > 0
    skill: str = "general"
    handoff: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class BotReply:
    """What the bot says and does for one turn."""

    segments: list[Segment]
    intent: str = "other"
    state: str = ""
    actions: list[str] = field(default_factory=list)
    end_call: bool = False
    transfer: TransferRequest | None = None
    expect: Literal["speech", "digits", "yesno", "rating", "none"] = "speech"
    barge_in: bool = True  # False for legal/confirmation read-backs that must be heard
    confidence: float = 1.0
    slots: dict[str, Any] = field(default_factory=dict)
    sentiment: float = 0.0  # -1 (angry) .. 1 (happy), of the caller's last input
    reply_id: int = 0  # increases per reply; used by `played()`

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments)

    def as_json(self) -> dict[str, Any]:
        """The `ivr chat --json` line shape: {"reply", "intent", "state", "actions"} (+ extras)."""
        return {
            "reply": self.text,
            "intent": self.intent,
            "state": self.state,
            "actions": list(self.actions),
            "end_call": self.end_call,
            "transfer": None if self.transfer is None else {"reason": self.transfer.reason, "priority": self.transfer.priority},
        }


CallerInputKind = Literal["text", "dtmf", "no_input", "start"]
