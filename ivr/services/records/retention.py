"""Retention: call records, their turns and their recording files older than the cut-off are deleted together, and
so are the shop-side rows holding callers' data (tickets, audit log, idempotency keys, failed identity checks) and
the message ids of signed webhook messages (``webhook_messages``, the messaging channel's replay protection; it
drops ids older than ``webhook_retention_h`` itself as new messages come, the purge also clears a quiet adapter's),
restock-notice subscriptions (personal offers: they keep the customer's phone) made before it, and the
cross-channel customer history (``customer_contacts``: what was done for a verified customer) started before it.

The cut-off is ``now - retention_days`` (settings, default 90) and applies to a call's start time; a record and its
recording go in the same purge. Recording files no record points to are left alone (not ours to judge).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, inspect, select

from ivr.services.channels.tables import CustomerContact, WebhookMessage
from ivr.services.db import get_engine, transaction
from ivr.services.records.store import RecordStore
from ivr.services.shop.offer_models import RestockSubscription
from ivr.services.shop.retention import purge_shop_before

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PurgeResult:
    cutoff: datetime
    dry_run: bool
    call_ids: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # recording files removed (or that would be)
    missing: list[str] = field(default_factory=list)  # recording paths whose file was already gone
    shop_rows: dict[str, int] = field(default_factory=dict)  # tickets, audit_log, idempotency_keys, verify_failures
    webhook_messages: int = 0  # message ids of signed webhooks received before the cut-off
    restock_subscriptions: int = 0  # restock notices asked for before the cut-off (they hold a phone number)
    customer_contacts: int = 0  # cross-channel history rows of contacts started before the cut-off

    def as_dict(self) -> dict:
        return {"cutoff": self.cutoff.isoformat(), "dry_run": self.dry_run, "records": len(self.call_ids),
                "files": len(self.files), "missing_files": len(self.missing), **self.shop_rows,
                "webhook_messages": self.webhook_messages, "restock_subscriptions": self.restock_subscriptions,
                "customer_contacts": self.customer_contacts}


def cutoff_for(days: int, now: datetime | None = None) -> datetime:
    if days < 1:
        raise ValueError("retention must be at least one day")
    return (now or datetime.now(UTC)).astimezone(UTC) - timedelta(days=days)


def purge(store: RecordStore, cutoff: datetime, *, dry_run: bool = False) -> PurgeResult:
    """Delete records started before ``cutoff`` and their recording files (``dry_run``: only say what would go)."""
    res = PurgeResult(cutoff, dry_run)
    old = store.older_than(cutoff)
    res.call_ids = [c for c, _, _ in old]
    paths = [Path(p) for _, _, p in old if p]
    for p in paths:
        (res.files if p.is_file() else res.missing).append(str(p))
    res.shop_rows = purge_shop_before(store.url, cutoff, dry_run=dry_run)
    res.webhook_messages = purge_messages_before(store.url, cutoff, dry_run=dry_run)
    res.restock_subscriptions = _purge_older(store.url, RestockSubscription, RestockSubscription.created_at, cutoff,
                                             dry_run)
    res.customer_contacts = _purge_older(store.url, CustomerContact, CustomerContact.started_at, cutoff, dry_run)
    if dry_run or not old:
        return res
    store.purge_before(cutoff)
    for f in res.files:
        p = Path(f)
        try:
            p.unlink()
        except FileNotFoundError:
            continue
        except OSError as e:
            log.warning("cannot remove recording %s: %s", p, e)
            continue
        _drop_empty_dir(p.parent)
    log.info("purged %d call records and %d recordings older than %s", len(res.call_ids), len(res.files),
             cutoff.isoformat())
    return res


def purge_messages_before(url: str, cutoff: datetime, *, dry_run: bool = False) -> int:
    """Webhook message ids received before ``cutoff`` (deleted unless ``dry_run``); 0 below migration 0006."""
    return _purge_older(url, WebhookMessage, WebhookMessage.received_at, cutoff, dry_run)


def _purge_older(url: str, model: Any, column: Any, cutoff: datetime, dry_run: bool) -> int:
    """Rows of ``model`` whose ``column`` is before ``cutoff`` (deleted unless ``dry_run``); 0 without the table."""
    if model.__tablename__ not in inspect(get_engine(url)).get_table_names():
        return 0
    old = column < cutoff
    with transaction(url) as s:
        n = int(s.scalar(select(func.count()).select_from(model).where(old)) or 0)
        if n and not dry_run:
            s.execute(delete(model).where(old))
    return n


def _drop_empty_dir(d: Path) -> None:
    try:
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()
    except OSError:
        pass
