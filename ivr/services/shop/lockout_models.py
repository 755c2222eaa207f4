"""Table of failed identity checks (the bot's own state, next to the shop tables in the same database).

One row per wrong answer to the verification question, keyed by the order asked about and by the caller's keyed
hash (``caller_key``, never the number). ``ivr.services.shop.lockout`` counts them over a sliding window.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ivr.services.db import Base
from ivr.services.shop.models import UtcDateTime


class VerifyFailure(Base):
    __tablename__ = "verify_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    order_id: Mapped[str] = mapped_column(String(24), default="", index=True)
    caller_key: Mapped[str] = mapped_column(String(64), default="", index=True)
    call_id: Mapped[str] = mapped_column(String(64), default="")
