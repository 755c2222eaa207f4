"""The reply builder: the vocabulary a turn (and every flow) uses to say things, ask questions and read numbers and
dates aloud. Every word comes from the language pack; prompt variants rotate per call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from ivr.dialog.context import CallContext, Input
from ivr.dialog.policy import NO_KEY, YES_KEY
from ivr.dialog.types import Segment, TransferRequest
from ivr.lang import LanguagePack


@dataclass
class ReplyDraft:
    """The reply being built during one turn."""

    segments: list[Segment] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    intent: str = ""
    expect: str = "speech"
    barge_in: bool = True
    end_call: bool = False
    transfer: TransferRequest | None = None
    question_index: int | None = None


class ReplyBuilder:
    """Builds ``out`` (the turn's :class:`ReplyDraft`) for one call; the dialogue manager is one."""

    pack: LanguagePack
    ctx: CallContext
    now: Callable[[], datetime]
    tz: ZoneInfo
    out: ReplyDraft
    _variants: dict[str, int]

    # --- saying -------------------------------------------------------------------------------------------
    def text(self, prompt_id: str, **fields: object) -> str:
        """A prompt's text (variants rotate per call)."""
        n = self._variants.get(prompt_id, 0)
        self._variants[prompt_id] = n + 1
        return self.pack.prompt(prompt_id, variant=n, **fields)

    def say(self, prompt_id: str, **fields: object) -> Segment:
        seg = Segment(self.text(prompt_id, **fields), None if fields else prompt_id)
        self.out.segments.append(seg)
        return seg

    def say_text(self, text: str, prompt_id: str | None = None) -> None:
        self.out.segments.append(Segment(text, prompt_id))

    def act(self, action: str) -> None:
        if action not in self.out.actions:
            self.out.actions.append(action)

    def no_barge_in(self) -> None:
        """This reply carries a read-back the caller must hear (RMA number, ticket number)."""
        self.out.barge_in = False

    # --- asking -------------------------------------------------------------------------------------------
    def ask(self, state: str, prompt_id: str, *, expect: str = "speech", dtmf_help: str | None = None,
            nlu_expected: str | None = None, **fields: object) -> None:
        """Ask a question and wait in ``state``. The question is what reprompts and barge-in refer to."""
        self.out.question_index = len(self.out.segments)
        seg = self.say(prompt_id, **fields)
        question = [seg]
        if not self.ctx.asr_available and dtmf_help and dtmf_help != prompt_id:
            question.append(self.say(dtmf_help))
        self.ctx.question = question
        self.ctx.question_dtmf = dtmf_help
        self.ctx.state = state
        self.ctx.expect = expect
        self.out.expect = expect
        self.ctx.nlu_expected = nlu_expected

    def ask_step(self, step: str, prompt_id: str, *, expect: str = "speech", dtmf_help: str | None = None,
                 nlu_expected: str | None = None, **fields: object) -> None:
        """Ask within the running flow: state becomes '<flow>.<step>'."""
        self.ask(f"{self.ctx.flow}.{step}", prompt_id, expect=expect, dtmf_help=dtmf_help,
                 nlu_expected=nlu_expected, **fields)

    def confirm(self, step: str, prompt_id: str, **fields: object) -> None:
        """A confirmation question before a write (yes/no by voice or 1/2 by keypad)."""
        self.ask(f"{self.ctx.flow}.{step}", prompt_id, expect="yesno", dtmf_help="yesno.reask",
                 nlu_expected="yesno", **fields)

    def reask(self) -> None:
        self.out.question_index = len(self.out.segments)
        self.out.segments.extend(self.ctx.question)
        self.out.expect = self.ctx.expect

    def yes_no(self, inp: Input) -> bool | None:
        """The caller's yes (True) or no (False) by voice or keypad; None when the input is neither."""
        if inp.kind == "dtmf":
            return {YES_KEY: True, NO_KEY: False}.get(inp.key)
        if inp.intent == "affirm":
            return True
        if inp.intent == "deny":
            return False
        return None

    # --- reading aloud ------------------------------------------------------------------------------------
    def digits(self, s: str) -> str:
        """Spell an identifier digit by digit (letters stay as they are)."""
        return "".join(self.pack.say_digits(c) if c.isdigit() else c for c in str(s) if c.isalnum())

    def amount(self, cents: int) -> str:
        return self.pack.say_amount(cents)

    def number(self, n: int) -> str:
        return self.pack.say_number(n)

    def today(self) -> date:
        return self.now().astimezone(self.tz).date()

    def local_date(self, t: datetime | date) -> date:
        if isinstance(t, datetime):
            return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(self.tz).date()
        return t

    def date(self, t: datetime | date) -> str:
        return self.pack.say_date(self.local_date(t), today=self.today())

    def label(self, prefix: str, code: str) -> str:
        """Spoken label of an option code (prompt '<prefix>.<code>'), falling back to '<prefix>.other'."""
        pid = f"{prefix}.{code}"
        return self.text(pid if pid in self.pack.prompts else f"{prefix}.other")

    def join(self, parts: list[str]) -> str:
        return self.text("list.sep").join(parts)
