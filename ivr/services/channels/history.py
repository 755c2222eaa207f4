"""One customer history across channels: conversations linked to a verified customer (``customer_contacts``).

A conversation on any channel (web chat, messaging, phone) is linked once the customer proves an order's phone
(``ivr.dialog.gate``) or calls from a trusted caller ID. The link is a **customer key**: a keyed hash (HMAC-SHA256 with
the service's ``secret_key``) of the phone's last 11 digits, so neither records nor this table keep the number.
The same phone gives the same key on every channel. What was done for the customer (the *matter*: a return
created, a complaint ticket, a callback booked, an agent's chat) is kept with the link, so the next contact can
resume it (``ivr.dialog.resume``) and the agent card can list it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from ivr.services.channels.tables import CustomerContact
from ivr.services.db import transaction


def customer_key(phone: str, secret: str = "") -> str:
    """The keyed hash of a phone number (its last 11 digits); '' without digits."""
    digits = re.sub(r"\D", "", phone or "")[-11:]
    if not digits:
        return ""
    return hmac.new(("ivr-customer:" + secret).encode(), digits.encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class Contact:
    """One linked conversation, as the dialogue and the agent card read it."""

    call_id: str
    channel: str
    started_at: datetime
    order_id: str = ""
    matter: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    outcome: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "channel": self.channel, "started_at": self.started_at.isoformat(),
                "order_id": self.order_id, "matter": self.matter, "detail": dict(self.detail),
                "outcome": self.outcome}


class CustomerHistory:
    """Contacts by customer key in the service database (``url``)."""

    def __init__(self, url: str, secret: str = "") -> None:
        self.url = url
        self.secret = secret

    def key(self, phone: str) -> str:
        return customer_key(phone, self.secret)

    def link(self, key: str, call_id: str, channel: str, *, started_at: datetime | None = None, order_id: str = "",
             matter: str | None = None, detail: dict[str, Any] | None = None, outcome: str | None = None,
             now: datetime | None = None) -> None:
        """Link conversation ``call_id`` to the customer, or update its link (``None`` keeps a field)."""
        if not key or not call_id:
            return
        now = now or datetime.now(UTC)
        with transaction(self.url) as s:
            row = s.scalar(select(CustomerContact).where(CustomerContact.call_id == call_id))
            if row is None:
                row = CustomerContact(customer_key=key, call_id=call_id, channel=channel[:16],
                                      started_at=started_at or now, order_id="", matter="", detail={}, outcome="")
                s.add(row)
            row.customer_key, row.updated_at = key, now
            if order_id:
                row.order_id = order_id[:32]
            if matter is not None:
                row.matter = matter[:32]
            if detail is not None:
                row.detail = dict(detail)
            if outcome is not None:
                row.outcome = outcome[:16]

    def contacts(self, key: str, *, exclude: str = "", within: timedelta = timedelta(days=30),
                 limit: int = 10, now: datetime | None = None) -> list[Contact]:
        """The customer's contacts of the last ``within``, newest first (``exclude``: this conversation)."""
        if not key:
            return []
        since = (now or datetime.now(UTC)) - within
        with transaction(self.url) as s:
            rows = s.scalars(select(CustomerContact).where(CustomerContact.customer_key == key,
                                                           CustomerContact.call_id != exclude,
                                                           CustomerContact.started_at >= since)
                             .order_by(CustomerContact.started_at.desc()).limit(limit)).all()
            return [Contact(r.call_id, r.channel, r.started_at, r.order_id, r.matter, dict(r.detail or {}),
                            r.outcome) for r in rows]


    def purge(self, before: datetime) -> int:
        """Forget contacts started before ``before`` (retention); how many."""
        with transaction(self.url) as s:
            rows = s.scalars(select(CustomerContact).where(CustomerContact.started_at < before)).all()
            for r in rows:
                s.delete(r)
            return len(rows)


def history_for(url: str, settings: Any = None) -> CustomerHistory:
    """The history over ``url`` keyed with ``secret_key`` (as caller keys and the verification lockout are)."""
    return CustomerHistory(url, getattr(settings, "secret_key", "") or "")
