"""Message ids of accepted signed webhook messages, per adapter, kept ``webhook_retention_h`` to refuse replays."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, UniqueConstraint
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
