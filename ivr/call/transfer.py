"""Handing a call over: what a transfer hook may do with the call (:class:`CallControl`), the default hook
(blind transfer, else a callback ticket) and callback booking. Warm transfer (``ivr.call.warm_transfer``) is
another hook over the same control."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from ivr.audio.frames import AudioFrame
from ivr.call.parts import DialogLike, DialogRunner
from ivr.call.ports import CallPort
from ivr.call.prompts import system_line
from ivr.dialog.types import TransferRequest
from ivr.services.records.model import CallRecord
from ivr.services.shop.api import ShopService

if TYPE_CHECKING:
    from ivr.call.playout import Playout

log = logging.getLogger(__name__)
T = TypeVar("T")


class CallHandle(Protocol):
    """The session as a transfer hook sees it (``ivr.call.session.CallSession`` is one)."""

    port: CallPort
    record: CallRecord
    rate: int
    playout: Playout
    dialog: DialogRunner
    caller_tap: Callable[[AudioFrame], None] | None

    @property
    def done(self) -> bool: ...
    async def say(self, text: str, prompt_id: str | None = None) -> None: ...
    def hangup_now(self, by: str = "system", reason: str = "") -> None: ...
    def set_outcome(self, outcome: str) -> None: ...


class CallControl:
    """What a transfer hook may do with the call: speak, play audio, listen to the caller, note turns."""

    def __init__(self, call: CallHandle) -> None:
        self._s = call

    @property
    def call_id(self) -> str:
        return self._s.port.info.call_id

    @property
    def language(self) -> str:
        return self._s.port.info.language

    @property
    def record(self) -> CallRecord:
        return self._s.record

    @property
    def dialog(self) -> DialogLike:
        return self._s.dialog.dialog

    @property
    def port(self) -> CallPort:
        return self._s.port

    async def say(self, text: str, prompt_id: str | None = None) -> None:
        """Speak text to the caller and wait until it has been played."""
        await self._s.say(text, prompt_id)

    async def say_line(self, reason: str, **fields: object) -> None:
        """Speak the language pack's line for ``reason`` (see :func:`~ivr.call.prompts.system_line`), if any."""
        text, prompt_id = system_line(self.language, reason, **fields)
        if text:
            await self.say(text, None if fields else prompt_id)

    def play(self, audio: AudioFrame) -> None:
        """Queue raw audio (hold music, the agent's voice) at the call's sample rate."""
        self._s.playout.enqueue(audio, reply_id=-1)

    def flush(self) -> None:
        """Drop queued audio to the caller (hold music before the agent's voice)."""
        self._s.playout.flush()

    @property
    def rate(self) -> int:
        """Sample rate of the caller's line (audio for :meth:`play` must be at this rate)."""
        return self._s.rate

    @property
    def queued_seconds(self) -> float:
        """Audio queued to the caller and not yet played."""
        return self._s.playout.queued_seconds

    def tap_caller(self, sink: Callable[[AudioFrame], None] | None) -> None:
        """Route the caller's audio to ``sink`` (an agent leg) and pause the bot's listening; None restores."""
        self._s.caller_tap = sink

    async def run_blocking(self, fn: Callable[[], T]) -> T:
        """Run blocking work (DB, shop) in the session's worker pool, serialised with the dialogue's steps."""
        return await self._s.dialog.run(fn)

    async def hangup(self, reason: str = "transferred") -> None:
        self._s.hangup_now("bot", reason)

    def set_outcome(self, outcome: str) -> None:
        """The outcome if the call ends now (e.g. "transferred" once a human has the caller)."""
        self._s.set_outcome(outcome)

    @property
    def ended(self) -> bool:
        """True once either side has hung up (a hook should stop what it is doing)."""
        return self._s.done


TransferHook = Callable[[CallControl, TransferRequest], Awaitable[str]]
"""Returns the call's outcome after the attempt: "transferred" (a human has it; the session ends),
"callback" (a ticket was made), or "" (nothing happened, the conversation goes on)."""


async def default_transfer(control: CallControl, request: TransferRequest) -> str:
    """Blind transfer when the transport knows a target (``info.extra["transfer_target"]``); otherwise tell the
    caller nobody can take the call now and book a callback ticket with the dialogue's hand-off context.
    Warm transfer to agents (queue, whisper, bridge: ``ivr.call.warm_transfer``) replaces this hook."""
    target = str(control.port.info.extra.get("transfer_target", ""))
    if target:
        try:
            if await control.port.transfer(target):
                return "transferred"
        except Exception as e:
            log.warning("transfer to %s failed: %s", target, e)
    await control.say_line("transfer_unavailable")
    return await book_callback(control, request, "no_agent")


async def book_callback(control: CallControl, request: TransferRequest, why: str,
                        shop: ShopService | None = None) -> str:
    """Create a callback ticket with the whole hand-off context (transcript included) and read its number back
    digit by digit; returns "callback", or "" when no ticket could be made (the bot conversation goes on)."""
    dialog = control.dialog
    desk = shop if shop is not None else dialog.shop
    if desk is None:
        return ""
    handoff = dict(request.handoff or {})
    order_id = handoff.get("order_id") or (handoff.get("order") or {}).get("order_id") or None
    try:
        ticket = await control.run_blocking(lambda: desk.create_ticket(
            "callback", f"callback ({why}): {request.reason}", dialog.ctx.caller_id, order_id,
            {"call_id": control.call_id, "why": why, "handoff": handoff}, f"{control.call_id}:transfer-callback"))
    except Exception as e:
        log.warning("callback ticket could not be created: %s", e)
        return ""
    ticket_id = ticket.ticket_id if ticket is not None else ""
    if not ticket_id:
        return ""
    control.record.extra["callback_ticket"] = ticket_id
    control.record.extra["callback_why"] = why
    from ivr.lang import get_pack

    text, _ = system_line(control.language, "callback_booked", ticket=get_pack(control.language).say_digits(ticket_id))
    if text:
        await control.say(text)
    return "callback"
