"""Tables of the text channels: message ids of accepted signed webhook messages (kept ``webhook_retention_h`` to
refuse replays) and the contacts of verified customers across channels (``ivr.services.channels.history``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ivr.services.db import Base
from ivr.services.shop.models import UtcDateTime


class WebhookMessage(Base):
    __tablename__ = "webhook_messages"
    __table_args__ = (UniqueConstraint("adapter", "message_id", name="uq_webhook_messages_adapter_message_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    adapter: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class CustomerContact(Base):
    """One conversation (any channel) linked to a verified customer: ``customer_key`` is a keyed hash of the
    verified phone (never the number), ``matter`` what was done for the customer (``ivr.dialog.resume``)."""

    __tablename__ = "customer_contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_key: Mapped[str] = mapped_column(String(32), index=True)
    call_id: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    order_id: Mapped[str] = mapped_column(String(32), default="")
    matter: Mapped[str] = mapped_column(String(32), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outcome: Mapped[str] = mapped_column(String(16), default="")
