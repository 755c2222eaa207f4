"""Retention of the shop-side personal data the bot writes: callback/complaint tickets, the audit log, idempotency
keys and failed identity checks older than the cut-off go in the same purge as the call records
(``ivr records purge``, the hourly purge of ``ivr serve``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, inspect, select

from ivr.services.db import get_engine, transaction
from ivr.services.shop.lockout_models import VerifyFailure
from ivr.services.shop.models import AuditLog, IdempotencyKey, TicketRow

# name in the report -> (table, its time column)
PURGED: dict[str, tuple[Any, Any]] = {
    "tickets": (TicketRow, TicketRow.created_at),
    "audit_log": (AuditLog, AuditLog.at),
    "idempotency_keys": (IdempotencyKey, IdempotencyKey.created_at),
    "verify_failures": (VerifyFailure, VerifyFailure.at),
}


def purge_shop_before(url: str, cutoff: datetime, *, dry_run: bool = False) -> dict[str, int]:
    """Rows older than ``cutoff`` per table (deleted unless ``dry_run``); tables the database lacks count 0."""
    present = set(inspect(get_engine(url)).get_table_names())
    out: dict[str, int] = {}
    with transaction(url) as s:
        for name, (model, col) in PURGED.items():
            if model.__tablename__ not in present:
                out[name] = 0
                continue
            n = int(s.scalar(select(func.count()).select_from(model).where(col < cutoff)) or 0)
            if n and not dry_run:
                s.execute(delete(model).where(col < cutoff))
            out[name] = n
    return out
