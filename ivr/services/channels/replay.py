"""Replay protection for signed webhooks: each (adapter, message id) is accepted once while it is remembered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from ivr.services.channels.tables import WebhookMessage
from ivr.services.db import transaction


class SeenMessages:
    """Message ids in the ``webhook_messages`` table; rows older than ``retention`` are purged as new ones come."""

    def __init__(self, url: str, retention: timedelta) -> None:
        self.url = url
        self.retention = retention

    def claim(self, adapter: str, message_id: str, now: datetime | None = None) -> bool:
        """True the first time (the id is stored), False for a replay (nothing stored)."""
        now = now or datetime.now(UTC)
        try:
            with transaction(self.url) as s:
                s.execute(delete(WebhookMessage).where(WebhookMessage.received_at < now - self.retention))
                s.add(WebhookMessage(adapter=adapter, message_id=message_id, received_at=now))
        except IntegrityError:
            return False
        return True

    def count(self, adapter: str | None = None) -> int:
        with transaction(self.url) as s:
            q = select(func.count()).select_from(WebhookMessage)
            if adapter is not None:
                q = q.where(WebhookMessage.adapter == adapter)
            return int(s.scalar(q) or 0)
