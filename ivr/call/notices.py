"""What the caller's screen is told during a call (softphone, agent card, test ports): typed notices.

The session sends one of these through :meth:`ivr.call.ports.CallPort.notify`; a transport that talks to a
browser sends :meth:`as_dict` as JSON (the data channel's wire format, read by ``web/static/phone.js``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, Protocol

log = logging.getLogger(__name__)

CallState = Literal["connected", "bot_speaking", "listening", "caller_speaking", "interrupted", "ended"]


@dataclass(frozen=True, slots=True)
class StateNotice:
    """The call changed state; ``connected`` carries the call id and whether speech is recognised, ``ended`` why."""

    state: CallState
    call_id: str | None = None
    asr: bool | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, object]:
        d: dict[str, object] = {"type": "state", "state": self.state}
        if self.call_id is not None:
            d["call_id"] = self.call_id
        if self.asr is not None:
            d["asr"] = self.asr
        if self.reason is not None:
            d["reason"] = self.reason
        return d


@dataclass(frozen=True, slots=True)
class TranscriptNotice:
    """A line of the conversation: the caller's (partial or final) or the bot's (with its intent)."""

    who: Literal["bot", "caller"]
    text: str
    final: bool = True
    intent: str | None = None

    def as_dict(self) -> dict[str, object]:
        d: dict[str, object] = {"type": "transcript", "who": self.who, "text": self.text, "final": self.final}
        if self.who == "bot":
            d["intent"] = self.intent
        return d


@dataclass(frozen=True, slots=True)
class DtmfNotice:
    """The caller pressed keys."""

    digits: str

    def as_dict(self) -> dict[str, object]:
        return {"type": "dtmf", "digits": self.digits}


Notice = StateNotice | TranscriptNotice | DtmfNotice


class Watched(Protocol):
    """Anything with a screen to tell (every :class:`~ivr.call.ports.CallPort`)."""

    def notify(self, notice: Notice) -> None: ...


def tell(port: Watched, notice: Notice) -> None:
    """Notify the port; a failing screen never breaks the call."""
    try:
        port.notify(notice)
    except Exception as e:
        log.debug("notify failed: %s", e)
