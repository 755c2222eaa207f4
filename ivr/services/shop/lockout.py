"""Verification failures counted across calls: an order (or a caller) with too many wrong answers in the window is
locked for self-service, and the caller is offered a person instead.

    lock = LockoutStore(url, max_failures=5, window_h=24, secret=settings.secret_key)
    lock.record_failure("100000000002", caller_id="13800138000", call_id="c1")
    lock.status("100000000002", caller_id="13800138000").locked   # True after 5 failures in 24 h

Rows live in ``verify_failures`` (migration 0005); the caller is stored as a keyed hash (``caller_key``), never as
a number. The lock lifts by itself once fewer than ``max_failures`` failures remain inside the window; records
retention (``ivr records purge``) deletes rows older than the cut-off.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select

from ivr.services.db import session_factory, transaction
from ivr.services.records.masking import caller_key
from ivr.services.shop.lockout_models import VerifyFailure

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LockStatus:
    order_failures: int = 0
    caller_failures: int = 0
    order_locked: bool = False
    caller_locked: bool = False
    until: datetime | None = None  # when the lock lifts (the oldest counted failure leaves the window)

    @property
    def locked(self) -> bool:
        return self.order_locked or self.caller_locked

    def as_json(self) -> dict[str, Any]:
        return {"locked": self.locked, "order_locked": self.order_locked, "caller_locked": self.caller_locked,
                "order_failures": self.order_failures, "caller_failures": self.caller_failures,
                "until": self.until.isoformat() if self.until else None}


class LockoutStore:
    """Persistent failure counter over one SQL database (SQLite or PostgreSQL, schema at head)."""

    def __init__(self, url: str, *, max_failures: int = 5, window_h: float = 24.0, secret: str = "") -> None:
        self.url = url
        self.max_failures = max_failures
        self.window = timedelta(hours=window_h)
        self.secret = secret

    def _key(self, caller_id: str) -> str:
        return caller_key(caller_id, self.secret) if caller_id else ""

    def record_failure(self, order_id: str, *, caller_id: str = "", call_id: str = "",
                       now: datetime | None = None) -> LockStatus:
        """Count one wrong answer (durably, before the caller hears the result) and return the new status."""
        now = now or datetime.now(UTC)
        with transaction(self.url) as s:
            s.add(VerifyFailure(at=now, order_id=order_id or "", caller_key=self._key(caller_id),
                                call_id=(call_id or "")[:64]))
        return self.status(order_id, caller_id=caller_id, now=now)

    def status(self, order_id: str, *, caller_id: str = "", now: datetime | None = None) -> LockStatus:
        now = now or datetime.now(UTC)
        since = now - self.window
        ck = self._key(caller_id)
        with session_factory(self.url)() as s:
            o_n, o_first = (0, None)
            if order_id:
                o_n, o_first = self._count(s, VerifyFailure.order_id == order_id, since)
            c_n, c_first = (0, None)
            if ck:
                c_n, c_first = self._count(s, VerifyFailure.caller_key == ck, since)
        o_locked, c_locked = o_n >= self.max_failures, c_n >= self.max_failures
        until = None
        if o_locked or c_locked:
            firsts = [f for f, on in ((o_first, o_locked), (c_first, c_locked)) if on and f is not None]
            until = max(firsts) + self.window if firsts else None
        return LockStatus(o_n, c_n, o_locked, c_locked, until)

    def _count(self, s: Any, where: Any, since: datetime) -> tuple[int, datetime | None]:
        """Failures inside the window and the time of the one whose expiry lifts the lock."""
        rows = s.scalars(select(VerifyFailure.at).where(where, VerifyFailure.at >= since)
                         .order_by(VerifyFailure.at.desc()).limit(self.max_failures)).all()
        n = s.scalar(select(func.count()).select_from(VerifyFailure).where(where, VerifyFailure.at >= since)) or 0
        first = rows[self.max_failures - 1] if len(rows) >= self.max_failures else None
        return int(n), first

    def locked_orders(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Orders locked right now (for the dashboard): order id, failures in the window, when the lock lifts."""
        now = now or datetime.now(UTC)
        since = now - self.window
        with session_factory(self.url)() as s:
            rows = s.execute(select(VerifyFailure.order_id, func.count(), func.max(VerifyFailure.at))
                             .where(VerifyFailure.at >= since, VerifyFailure.order_id != "")
                             .group_by(VerifyFailure.order_id)
                             .having(func.count() >= self.max_failures)).all()
        out = []
        for order_id, n, last in rows:
            st = self.status(order_id, now=now)
            out.append({"order_id": order_id, "failures": int(n),
                        "last_failure": _utc(last).isoformat() if last else None,
                        "until": st.until.isoformat() if st.until else None})
        return sorted(out, key=lambda r: r["last_failure"] or "", reverse=True)

    def purge_before(self, cutoff: datetime) -> int:
        with transaction(self.url) as s:
            return int(s.execute(delete(VerifyFailure).where(VerifyFailure.at < cutoff)).rowcount or 0)


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


class MemoryLockout(LockoutStore):
    """Same rules without a database (a shop behind HTTP and no database given): counts live in this process."""

    def __init__(self, *, max_failures: int = 5, window_h: float = 24.0, secret: str = "") -> None:
        super().__init__("", max_failures=max_failures, window_h=window_h, secret=secret)
        self._rows: list[tuple[datetime, str, str]] = []
        self._lock = threading.Lock()

    def record_failure(self, order_id: str, *, caller_id: str = "", call_id: str = "",
                       now: datetime | None = None) -> LockStatus:
        now = now or datetime.now(UTC)
        with self._lock:
            self._rows = [r for r in self._rows if r[0] >= now - self.window][-10000:]
            self._rows.append((now, order_id or "", self._key(caller_id)))
        return self.status(order_id, caller_id=caller_id, now=now)

    def status(self, order_id: str, *, caller_id: str = "", now: datetime | None = None) -> LockStatus:
        now = now or datetime.now(UTC)
        since, ck = now - self.window, self._key(caller_id)
        with self._lock:
            o = sorted((t for t, oid, _ in self._rows if order_id and oid == order_id and t >= since), reverse=True)
            c = sorted((t for t, _, k in self._rows if ck and k == ck and t >= since), reverse=True)
        o_locked, c_locked = len(o) >= self.max_failures, len(c) >= self.max_failures
        firsts = [x[self.max_failures - 1] for x, on in ((o, o_locked), (c, c_locked)) if on]
        return LockStatus(len(o), len(c), o_locked, c_locked, max(firsts) + self.window if firsts else None)

    def locked_orders(self, now: datetime | None = None) -> list[dict[str, Any]]:
        now = now or datetime.now(UTC)
        with self._lock:
            ids = {oid for t, oid, _ in self._rows if oid and t >= now - self.window}
        return [{"order_id": o, "failures": st.order_failures, "last_failure": None,
                 "until": st.until.isoformat() if st.until else None}
                for o in sorted(ids) if (st := self.status(o, now=now)).order_locked]

    def purge_before(self, cutoff: datetime) -> int:
        with self._lock:
            n = len(self._rows)
            self._rows = [r for r in self._rows if r[0] >= cutoff]
            return n - len(self._rows)


_default: dict[str, LockoutStore] = {}


def lockout_for(url: str | None, settings: Any = None) -> LockoutStore:
    """The process's lockout store for ``url`` (thresholds and secret from ``settings``, else the defaults)."""
    key = url or ""
    store = _default.get(key)
    if store is None:
        kw: dict[str, Any] = {}
        if settings is not None:
            kw = {"max_failures": settings.verify_lock_failures, "window_h": settings.verify_lock_window_h,
                  "secret": settings.secret_key}
        store = LockoutStore(url, **kw) if url else MemoryLockout(**kw)
        _default[key] = store
    return store
