"""One text conversation (web chat or a messaging thread) over the dialogue engine, and the hub that holds them.

A :class:`ChatSession` wraps a dialogue manager in :class:`~ivr.services.records.capture.RecordedDialog` (so the
conversation is stored as a record with its channel, masked, with outcome, sentiment and CSAT like a call), keeps
the messages shown so far (customer and bot, rendered by :mod:`ivr.dialog.render_text`) and tells listeners
(WebSockets) about new ones. The manager is synchronous: callers run :meth:`ChatSession.send` off the event loop;
a lock keeps one turn at a time per session.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ivr.dialog.render_text import render, rules
from ivr.privacy import mask_secret

log = logging.getLogger(__name__)
Listener = Callable[[dict[str, Any]], None]
TYPED_STATES = ("ask_order", "verify")  # the dialogue collects keypad digits here until '#'
CLOSED_KEEP_S = 300.0  # an ended conversation stays readable this long


class ChatClosed(Exception):
    """The conversation has ended (bot goodbye, transfer, close or idle timeout)."""


@dataclass
class ChatSession:
    """One conversation: ``session_id`` is public (it names the record), ``token`` is the customer's credential."""

    session_id: str
    token: str
    channel: str
    call: Any  # RecordedDialog
    messages: list[dict[str, Any]] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)
    last_active: float = field(default_factory=time.monotonic)
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    agents: Any = None  # ChatAgents (ivr.channels.agent_leg): transfers go to the agent desk
    leg: Any = None  # ChatLeg once handed to agents: customer messages go to the agent, not the dialogue

    @property
    def manager(self) -> Any:
        return self.call.m

    def _add(self, msg: dict[str, Any]) -> dict[str, Any]:
        msg = {"seq": len(self.messages) + 1, "at": time.time(), **msg}
        self.messages.append(msg)
        for listen in list(self.listeners):
            listen(msg)
        return msg

    def start(self) -> list[dict[str, Any]]:
        with self.lock:
            self._bot(self.call.start())
            return list(self.messages)

    def send(self, *, text: str = "", key: str = "", label: str = "") -> list[dict[str, Any]]:
        """A customer message (typed ``text``, or a quick reply: its keypad ``key`` and ``label``) and the bot's
        answer, as the new messages. Raises :class:`ChatClosed` once the conversation is over."""
        with self.lock:
            if self.closed:
                raise ChatClosed(self.session_id)
            self.last_active = time.monotonic()
            secret = bool(getattr(self.manager, "expects_secret", False))
            shown = label or key if key else text
            first = len(self.messages)
            self._add({"role": "customer", "text": mask_secret(shown) if secret else shown})
            if self.leg is not None:  # with (or waiting for) a person: the bot no longer answers
                self.leg.from_customer(shown)
                return self.messages[first:]
            if key and self.manager.ctx.state in TYPED_STATES:  # numbers are typed: a lone key is text there
                key, text = "", key
            self._bot(self.call.dtmf(key) if key else self.call.text(text))
            return self.messages[first:]

    def _bot(self, reply: Any) -> dict[str, Any]:
        msg = self._add(render(self.manager, reply))
        if reply.transfer is not None:
            why = self.agents.hand_over(self, reply.transfer) if self.agents is not None else "none"
            if not why:
                return msg  # queued for an agent (ivr.channels.agent_leg); the conversation stays open
            self._book_callback(reply.transfer, why)
        if reply.end_call or reply.transfer is not None:
            self._finish("bot_hangup" if reply.end_call else "transferred", "bot")
        return msg

    def book_callback(self, transfer: Any, why: str) -> None:
        """No agent took the chat in time: a callback ticket, and the conversation ends."""
        with self.lock:
            if not self.closed:
                self.leg = None
                self._book_callback(transfer, why)
                self._finish("transferred", "bot")

    def system(self, text: str, *, intent: str = "human_agent", end: bool = False) -> None:
        """A line of the service (queue place, agent connected) shown as the bot's."""
        with self.lock:
            if text and not self.closed:
                self._add({"role": "bot", "text": text, "quick_replies": [], "cards": [], "state": "transferred",
                           "intent": intent, "actions": [], "end": end, "transfer": None})

    def agent_say(self, text: str, agent_name: str = "") -> None:
        """The agent's reply, shown to the customer as typed. Raises :class:`ChatClosed` after the end."""
        with self.lock:
            if self.closed or self.leg is None:
                raise ChatClosed(self.session_id)
            self.last_active = time.monotonic()
            self._add({"role": "agent", "text": text, "agent": agent_name, "quick_replies": [], "cards": [],
                       "end": False})
            self.leg.from_agent(text)

    def end_by_agent(self, reason: str) -> None:
        """The agent ended the chat: the customer is told, the record saved."""
        from ivr.channels.lines import agent_line

        with self.lock:
            if self.closed:
                return
            self._add({"role": "bot", "text": agent_line(self.manager, "ended_by_agent"), "quick_replies": [],
                       "cards": [], "state": "ended", "intent": "human_agent", "actions": [], "end": True,
                       "transfer": None})
            self._finish(reason, "agent" if reason == "agent_hangup" else "system")

    def _book_callback(self, transfer: Any, why: str = "none") -> None:
        """No agent can take the chat (``why``: none = no desk for chats, closed, unavailable, timeout): book a
        callback ticket with the hand-off (transcript included; the verified order's phone as the contact) and
        tell the customer its number."""
        from ivr.channels.lines import agent_line

        m, lines = self.manager, rules(self.manager)
        ctx = m.ctx
        verified = ctx.order is not None and ctx.verification.verified
        ticket_id = ""
        try:
            ticket = m.shop.create_ticket(
                "callback", f"callback ({self.channel}, {why}): {transfer.reason}",
                ctx.order.phone if verified else "", ctx.order.order_id if verified else None,
                {"call_id": self.session_id, "channel": self.channel, "why": why,
                 "handoff": dict(transfer.handoff or {})}, f"{self.session_id}:transfer-callback")
            ticket_id = getattr(ticket, "ticket_id", "") or ""
        except Exception as e:  # the shop being down must not lose the customer's last message
            log.warning("chat %s: callback ticket could not be created: %s", self.session_id, e)
        if ticket_id:
            self.note_matter("callback", ticket_id=ticket_id)
            m.outcome = "callback"
            self.call.record.extra.update(callback_ticket=ticket_id, callback_why=why)
            text = lines.callback_phone if verified else lines.callback_no_phone
            hours = getattr(getattr(getattr(self.agents, "desk", None), "options", None), "service_hours", "")
            text = agent_line(m, why, hours=hours) + text.format(ticket=ticket_id)
        else:
            text = lines.callback_failed
        self._add({"role": "bot", "text": text, "quick_replies": [], "cards": [], "state": "ended",
                   "intent": "human_agent", "actions": ["callback_booked"] if ticket_id else [], "end": True,
                   "transfer": None, "ticket": ticket_id or None})

    def note_matter(self, matter: str, **detail: object) -> None:
        """Keep what the channel did for a verified customer (``callback``, ``agent``) in the customer's history
        (``ivr.dialog.resume``), unless the dialogue already did something more specific."""
        resume = getattr(self.manager, "resume", None)
        if resume is not None and not resume.matter:
            resume.note(self.manager, matter, **detail)

    def close(self, reason: str = "caller_hangup", ended_by: str = "caller") -> None:
        with self.lock:
            self._finish(reason, ended_by)

    def _finish(self, reason: str, ended_by: str) -> None:
        if not self.closed:
            self.closed = True
            self.last_active = time.monotonic()
            self.call.finish(reason, ended_by)
            if self.leg is not None:
                self.leg.customer_left(reason)
            for listen in list(self.listeners):
                listen({"type": "closed", "reason": reason})

    def public(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "channel": self.channel, "closed": self.closed,
                "messages": list(self.messages)}


class ChatHub:
    """Live text conversations by id; idle ones are closed (record saved) after ``idle_timeout_s``; at most
    ``max_sessions`` open at once."""

    def __init__(self, *, shop: Any, store: Any, secret: str, language: str = "zh-CN",
                 idle_timeout_s: float = 1800.0, max_sessions: int = 500,
                 dialog_factory: Callable[..., Any] | None = None) -> None:
        self.shop, self.store, self.secret, self.language = shop, store, secret, language
        self.idle_timeout_s, self.max_sessions = idle_timeout_s, max_sessions
        self.dialog_factory = dialog_factory
        self.agents: Any = None  # ChatAgents when the service has an agent desk (set by the web app)
        self._sessions: dict[str, ChatSession] = {}
        self._threads: dict[tuple[str, str], str] = {}  # (adapter, platform conversation id) -> session id
        self._lock = threading.Lock()
        self._thread_lock = threading.Lock()  # held while a thread's conversation is looked up or opened

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, channel: str, *, caller_id: str = "", prefix: str = "chat") -> ChatSession:
        """A new conversation, greeted. Raises :class:`OverflowError` when ``max_sessions`` are live."""
        from ivr.call.ports import CallInfo
        from ivr.services.records.capture import RecordedDialog
        from ivr.wiring import new_dialog

        self.sweep()
        with self._lock:
            if sum(not s.closed for s in self._sessions.values()) >= self.max_sessions:
                raise OverflowError(f"{self.max_sessions} conversations are open")
            sid = f"{prefix}-{uuid.uuid4().hex[:16]}"
            info = CallInfo(sid, channel, caller_id, language=self.language)
            factory = self.dialog_factory or (lambda i: new_dialog(self.shop, i, asr_available=True))
            call = RecordedDialog(factory(info), self.store, channel=channel, caller_id=caller_id, call_id=sid,
                                  secret=self.secret, language=self.language)
            session = ChatSession(sid, secrets.token_urlsafe(32), channel, call, agents=self.agents)
            self._sessions[sid] = session
        session.start()
        return session

    def get(self, session_id: str) -> ChatSession | None:
        return self._sessions.get(session_id)

    def thread(self, key: tuple[str, str], channel: str, *, prefix: str = "msg") -> tuple[ChatSession, bool]:
        """The open conversation of a messaging thread (``key``: adapter, conversation id), or a new one
        (then True: its greeting is not delivered yet). Two messages of a new thread at once open one."""
        with self._thread_lock:
            with self._lock:
                sid = self._threads.get(key)
                s = self._sessions.get(sid) if sid else None
            if s is not None and not s.closed:
                return s, False
            s = self.create(channel, prefix=prefix)
            with self._lock:
                self._threads[key] = s.session_id
            return s, True

    def thread_session(self, key: tuple[str, str]) -> ChatSession | None:
        sid = self._threads.get(key)
        return self._sessions.get(sid) if sid else None

    def check(self, session_id: str, token: str | None) -> tuple[int, ChatSession | None]:
        """(0, session) when ``token`` is this session's, else (401 no token | 403 wrong/unknown, None)."""
        import hmac

        if not token:
            return 401, None
        s = self._sessions.get(session_id)
        if s is None or not hmac.compare_digest(token.encode(), s.token.encode()):
            return 403, None
        return 0, s

    def sweep(self, now: float | None = None) -> int:
        """Close and forget conversations idle for ``idle_timeout_s`` (ended ones after ``CLOSED_KEEP_S``, so the page
        can still read the last messages); how many were dropped."""
        now = time.monotonic() if now is None else now
        with self._lock:
            gone = [s for s in self._sessions.values() if now - s.last_active > self.idle_timeout_s
                    or (s.closed and now - s.last_active > min(CLOSED_KEEP_S, self.idle_timeout_s))]
            for s in gone:
                self._sessions.pop(s.session_id, None)
            self._threads = {k: v for k, v in self._threads.items() if v in self._sessions}
        for s in gone:
            s.close("timeout", "system")
        return len(gone)

    def close_all(self, reason: str = "shutdown") -> None:
        with self._lock:
            live, self._sessions, self._threads = list(self._sessions.values()), {}, {}
        for s in live:
            s.close(reason, "system")
