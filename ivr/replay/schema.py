"""The fixture format: one YAML file describes one call as a caller would make it.

A fixture names the caller (caller id, language, line type), lists the caller's turns in order and says what the
bot must do after each turn and over the whole call. Audio paths are relative to the fixture file. Every key is
checked (unknown keys are errors) so a typo never silently turns an expectation off. See docs/replay.md.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class ReplayUnavailable(Exception):
    """This way of replaying cannot run here (one line saying why and what to do)."""

DTMF_RE = re.compile(r"^[0-9*#A-D]+$")
# Call outcomes as the call record names them (ivr.services.records.model.OUTCOMES minus in_progress).
OUTCOMES = ("self_served", "transferred", "callback", "abandoned", "failed")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TurnExpect(_Strict):
    """What the bot must do in answer to one caller turn (all given checks must hold)."""

    intent: str | list[str] | None = Field(None, description="The intent the bot understood (or any of a list).")
    slots: dict[str, Any] = Field(default_factory=dict, description="Slots that must be present with these values.")
    state: str | None = Field(None, description="Dialogue state after the reply (substring match).")
    reply_contains: list[str] = Field(default_factory=list, description="Every one of these must be in the reply.")
    reply_contains_any: list[str] = Field(default_factory=list, description="At least one must be in the reply.")
    reply_not_contains: list[str] = Field(default_factory=list, description="None of these may be in the reply.")
    actions: list[str] = Field(default_factory=list, description="Actions the bot must take this turn.")
    no_actions: list[str] = Field(default_factory=list, description="Actions the bot must not take this turn.")
    max_latency_ms: float | None = Field(None, gt=0, description="Caller's speech end to first bot audio heard.")
    reply: bool | None = Field(None, description="False: the bot must stay silent (e.g. after a backchannel).")
    interrupted: bool | None = Field(None, description="Barge-in turns: whether the bot's audio must stop.")
    max_stop_ms: float | None = Field(None, gt=0, description="Barge-in: caller speech start to bot audio stopped.")
    end_call: bool | None = Field(None, description="Whether the bot ends the call after this reply.")
    max_cer: float | None = Field(
        None, ge=0, description="Real ASR only: character error rate of the recognised text vs the reference."
    )

    @field_validator("reply_contains", "reply_contains_any", "reply_not_contains", "actions", "no_actions")
    @classmethod
    def _no_empty(cls, v: list[str]) -> list[str]:
        if any(not s.strip() for s in v):
            raise ValueError("empty string in list")
        return v


class Turn(_Strict):
    """One thing the caller does: speak an audio file, key digits, stay silent, or hang up."""

    say: str | None = Field(None, description="Audio file (WAV/FLAC, any rate) relative to the fixture.")
    text: str | None = Field(None, description="Reference transcript of the audio (required with `say`).")
    dtmf: str | None = Field(None, description="Keypad digits, e.g. '1#' (0-9 * # A-D).")
    silence: float | None = Field(None, gt=0, le=120, description="Seconds the caller stays silent (then silent on until the bot speaks).")
    hangup: bool = Field(False, description="The caller hangs up.")
    wait: float = Field(0.5, ge=0, le=60, description="Think time after the bot finished speaking, seconds.")
    barge_in_at: float | None = Field(
        None, ge=0, le=60, description="Speak while the bot talks: seconds after the bot's reply started."
    )
    note: str = ""
    expect: TurnExpect | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Turn:
        kinds = [k for k in ("say", "dtmf", "silence") if getattr(self, k) is not None] + (["hangup"] if self.hangup else [])
        if len(kinds) != 1:
            raise ValueError(
                "a turn needs exactly one of say / dtmf / silence / hangup"
                + (f", got {' + '.join(kinds)}" if kinds else "")
            )
        if self.say is not None and not (self.text or "").strip():
            raise ValueError("`say` needs its reference transcript in `text`")
        if self.text is not None and self.say is None:
            raise ValueError("`text` belongs to a `say` turn")
        if self.dtmf is not None and not DTMF_RE.match(self.dtmf):
            raise ValueError(f"dtmf {self.dtmf!r}: only 0-9 * # A-D allowed")
        if self.barge_in_at is not None and self.say is None:
            raise ValueError("`barge_in_at` needs a `say` turn (the caller talks over the bot)")
        if self.hangup and self.expect is not None:
            raise ValueError("a hangup turn has no reply to expect; put call expectations under the top-level `expect`")
        return self

    @property
    def kind(self) -> str:
        if self.say is not None:
            return "say"
        if self.dtmf is not None:
            return "dtmf"
        if self.silence is not None:
            return "silence"
        return "hangup"


class CallExpect(_Strict):
    """What must hold for the whole call."""

    outcome: Literal["self_served", "transferred", "callback", "abandoned", "failed"] | None = Field(
        None, description="The call record's outcome."
    )
    ended_by: Literal["caller", "bot", "system"] | None = Field(None, description="Who ended the call.")
    actions: list[str] = Field(default_factory=list, description="Actions taken at some point in the call.")
    no_actions: list[str] = Field(default_factory=list, description="Actions that must never happen.")
    max_latency_ms: float | None = Field(None, gt=0, description="Bound on every turn's latency.")


class Fixture(_Strict):
    """One recorded or generated call."""

    name: str = Field("", description="Defaults to the file name without extension.")
    description: str = ""
    language: str = "zh-CN"
    caller_id: str = Field("", description="Caller's phone number as the network presents it ('' = withheld).")
    line: Literal["wideband", "telephone"] = Field(
        "wideband", description="telephone = 8 kHz call (like SIP/G.711); wideband = 16 kHz (like WebRTC)."
    )
    tags: list[str] = Field(default_factory=list)
    background: str | None = Field(
        None, description="Audio file looped under everything the caller sends (street, office, car noise)."
    )
    greeting: TurnExpect | None = Field(None, description="Expectations on the bot's greeting.")
    turns: list[Turn] = Field(min_length=1)
    expect: CallExpect = Field(default_factory=CallExpect)

    @field_validator("language")
    @classmethod
    def _lang(cls, v: str) -> str:
        if not re.match(r"^[a-z]{2,3}-[A-Z]{2}$", v):
            raise ValueError("expected a language tag such as zh-CN")
        return v

    @field_validator("caller_id")
    @classmethod
    def _caller(cls, v: str) -> str:
        if v and not re.match(r"^\+?[0-9]{3,20}$", v):
            raise ValueError("caller_id must be digits (optionally with a leading +)")
        return v

    @model_validator(mode="after")
    def _hangup_last(self) -> Fixture:
        for i, t in enumerate(self.turns[:-1]):
            if t.hangup:
                raise ValueError(f"turns[{i}] hangs up but more turns follow")
        return self
