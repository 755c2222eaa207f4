"""Resuming across channels: a verified customer is greeted with the open matter of an earlier contact.

* **Link.** Once the caller proves an order's phone (``gate``: ``caller_verified``), this conversation is linked to
  the customer (``ivr.services.channels.history``: a keyed hash of that phone) on whatever channel it runs; what is
  done for the customer (a return or exchange created, a complaint ticket, a cancellation; the chat channel adds
  callbacks and agent chats through :meth:`Resume.note`) is kept with the link, and the outcome at the end.
* **Resume.** Right after the verification succeeds (``verify.ok``) the bot tells the customer about the newest
  earlier contact (within ``RESUME_WITHIN``) that has a matter, with its live state from the shop (prompt
  ``resume.line``: when, on which channel, what, and how it stands). Once per conversation.
* **Trusted caller ID.** A caller ID a trusted trunk vouched for may hear only *that* there was a recent contact
  (``resume.hint`` after the greeting), never what it was about: the matter needs the same verification as an order.
* **Agent card.** A hand-off carries ``history``: the customer's contacts of the last 30 days, labelled.

The history store failing never breaks a conversation (logged, then the dialogue goes on without it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from ivr.dialog.context import CallContext
    from ivr.dialog.reply import ReplyDraft
    from ivr.lang import LanguagePack
    from ivr.services.channels.history import Contact, CustomerHistory
    from ivr.services.shop.api import ShopService

log = logging.getLogger(__name__)

RESUME_WITHIN = timedelta(days=7)  # older matters are not brought up unasked
CARD_WITHIN = timedelta(days=30)
# what a flow did -> the matter it leaves open (an intent name: its label is the pack's intent.<name>)
MATTER_ACTIONS = {"return_created": "return_request", "exchange_created": "exchange_request",
                  "ticket_created": "complaint", "order_cancelled": "cancel_order"}


class DialogManager(Protocol):
    """What the memory uses of the dialogue manager."""

    ctx: CallContext
    out: ReplyDraft
    pack: LanguagePack
    shop: ShopService
    tz: ZoneInfo
    outcome: str
    now: Callable[[], datetime]

    def text(self, prompt_id: str, **fields: object) -> str: ...
    def say_text(self, text: str, prompt_id: str | None = None) -> None: ...
    def act(self, action: str) -> None: ...
    def digits(self, s: str) -> str: ...
    def number(self, n: int) -> str: ...
    def today(self) -> date: ...
    def local_date(self, t: datetime | date) -> date: ...
    def shop_call(self, fn: Callable[..., Any], *args: object, **kwargs: object) -> Any: ...  # noqa: ANN401


def for_shop(shop: ShopService) -> Resume:
    """The memory of a conversation over ``shop``: contacts next to the shop's data (embedded shop), else in the
    service database; without either, a memory that links and resumes nothing."""
    from ivr.dialog.shopdb import side_tables_db
    from ivr.services.channels.history import history_for

    url, settings = side_tables_db(shop)
    return Resume(history_for(url, settings) if url else None)


class Resume:
    """The cross-channel memory of one conversation (see the module docstring)."""

    def __init__(self, history: CustomerHistory | None) -> None:
        self.history = history
        self.key = ""
        self.greeted = False
        self.matter = ""
        self.detail: dict[str, Any] = {}

    # --- hooks of the dialogue manager ------------------------------------------------------------------
    def at_start(self, m: DialogManager) -> None:
        """After the greeting: a trusted caller ID with a recent contact hears that it can be resumed."""
        ctx = m.ctx
        if self.history is None or not (ctx.caller_id and ctx.caller_id_trusted):
            return
        try:
            contact = self._open_contact(m, self.history.key(ctx.caller_id))
            if contact is not None:
                m.say_text(m.text("resume.hint", when=_when(m, contact.started_at),
                                  channel=_channel(m, contact.channel)))
                m.act("resume_hinted")
        except Exception:
            log.exception("customer history unavailable")

    def after_turn(self, m: DialogManager) -> None:
        """After each caller turn: link on verification (and resume once), keep what was done, give the agent
        card the history when handing over."""
        if self.history is None:
            return
        try:
            self._after_turn(m)
        except Exception:
            log.exception("customer history unavailable")

    def note(self, m: DialogManager, matter: str, **detail: object) -> None:
        """A matter the channel settled outside the dialogue (``callback`` with ``ticket_id``, ``agent``)."""
        self.matter, self.detail = matter, {k: v for k, v in detail.items() if v not in (None, "")}
        self._save(m)

    def at_end(self, m: DialogManager) -> None:
        self._save(m, outcome=m.outcome or "")

    # --- the work ---------------------------------------------------------------------------------------
    def _after_turn(self, m: DialogManager) -> None:
        ctx, out = m.ctx, m.out
        if not self.key and ctx.verification.verified and ctx.order is not None:
            self.key = self.history.key(ctx.order.phone)  # stored with the first matter, else at the end
            self._resume(m)
        for action in out.actions:
            if action in MATTER_ACTIONS:
                self.matter = MATTER_ACTIONS[action]
                self.detail = {k: ctx.slots[k] for k in ("rma_id", "ticket_id") if ctx.slots.get(k)}
                self._save(m)
        if out.transfer is not None and self.key:
            out.transfer.handoff["history"] = self.card(m)

    def _save(self, m: DialogManager, outcome: str | None = None) -> None:
        if self.history is None or not self.key:
            return
        try:
            order = m.ctx.order.order_id if m.ctx.order is not None else ""
            self.history.link(self.key, m.ctx.call_id, m.ctx.channel, order_id=order,
                              matter=self.matter or None, detail=self.detail if self.matter else None,
                              outcome=outcome)
        except Exception:
            log.exception("customer history unavailable")

    def _open_contact(self, m: DialogManager, key: str) -> Contact | None:
        for c in self.history.contacts(key, exclude=m.ctx.call_id, within=RESUME_WITHIN, now=m.now()):
            if c.matter:
                return c
        return None

    def _resume(self, m: DialogManager) -> None:
        if self.greeted:
            return
        self.greeted = True
        contact = self._open_contact(m, self.key)
        if contact is None:
            return
        text = m.text("resume.line", when=_when(m, contact.started_at),
                      channel=_channel(m, contact.channel), matter=_matter(m, contact.matter),
                      progress=_progress(m, contact))
        segs = m.out.segments
        at = next((i + 1 for i, s in enumerate(segs) if s.prompt_id == "verify.ok"), 0)
        from ivr.dialog.types import Segment

        segs.insert(at, Segment(text, None))
        if m.out.question_index is not None and m.out.question_index >= at:
            m.out.question_index += 1
        m.act("history_resumed")

    def card(self, m: DialogManager) -> list[dict[str, Any]]:
        """The customer's earlier contacts for the agent's card (labels in the conversation's language)."""
        if self.history is None or not self.key:
            return []
        return [c.as_json() | {"labels": {"when": m.local_date(c.started_at).isoformat() + " "
                                          + c.started_at.astimezone(m.tz).strftime("%H:%M"),
                                          "channel": _channel(m, c.channel),
                                          "matter": _matter(m, c.matter) if c.matter else ""}}
                for c in self.history.contacts(self.key, exclude=m.ctx.call_id, within=CARD_WITHIN, now=m.now())]


def _label(m: DialogManager, prefix: str, code: str) -> str:
    pid = f"{prefix}.{code}"
    return m.text(pid if pid in m.pack.prompts else f"{prefix}.other")


def _channel(m: DialogManager, channel: str) -> str:
    pid = f"resume.channel.{channel}"
    return m.text(pid if pid in m.pack.prompts else "resume.channel.other")


def _matter(m: DialogManager, matter: str) -> str:
    pid = f"resume.matter.{matter}"
    return m.text(pid) if pid in m.pack.prompts else _label(m, "intent", matter)


def _when(m: DialogManager, at: datetime) -> str:
    """Morning / afternoon / evening (today), yesterday, or N days ago, in the dialogue's time zone."""
    days = (m.today() - m.local_date(at)).days
    if days <= 0:
        hour = at.astimezone(m.tz).hour
        return m.text("resume.when.morning" if hour < 12 else "resume.when.afternoon" if hour < 18
                      else "resume.when.evening")
    if days == 1:
        return m.text("resume.when.yesterday")
    return m.text("resume.when.days", n=m.number(days))


def _progress(m: DialogManager, c: Contact) -> str:
    """What became of the matter, read live from the shop where it can be."""
    d = c.detail
    if c.matter in ("return_request", "exchange_request") and d.get("rma_id"):
        order = m.shop_call(m.shop.get_order, c.order_id) if c.order_id else None
        rma = next((r for r in (order.returns if order else []) if r.rma_id == d["rma_id"]), None)
        status = m.text(f"rma.{rma.status}") if rma is not None and f"rma.{rma.status}" in m.pack.prompts else ""
        kind = "exchange" if c.matter == "exchange_request" else "return"
        return m.text(f"resume.progress.{kind}", rma_id=m.digits(d["rma_id"]),
                      status=status or m.text("resume.progress.unknown"))
    if c.matter in ("complaint", "callback") and d.get("ticket_id"):
        return m.text(f"resume.progress.{c.matter}", ticket_id=m.digits(str(d["ticket_id"])))
    pid = f"resume.progress.{c.matter}"
    return m.text(pid) if pid in m.pack.prompts else m.text("resume.progress.other")
