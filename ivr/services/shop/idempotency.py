"""Idempotent writes of the SQL shop, and the fault-injection hook of the crash tests.

``run_once`` runs a write in one transaction that first claims the idempotency key (primary key, so a concurrent
duplicate waits and then fails its insert); the write stores its result reference on the key, so a retry with the
same key returns that result. Serialisation conflicts and a busy database are retried; a crash anywhere before
commit leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from ivr.services.db import transaction
from ivr.services.shop.api import NotAllowed, OmsUnavailable
from ivr.services.shop.models import IdempotencyKey

T = TypeVar("T")

PAUSE_ENV = "IVR_SHOP_PAUSE_AT"
"""Fault injection for crash tests: when set to a step name (e.g. 'create_return.rma_inserted'), the write
pauses there (inside its open transaction), touching ``$IVR_SHOP_PAUSE_FILE`` so a test can kill the process."""

_RETRYABLE_PG = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock not available


def pause(step: str) -> None:
    if os.environ.get(PAUSE_ENV) == step:
        marker = os.environ.get("IVR_SHOP_PAUSE_FILE")
        if marker:
            Path(marker).write_text(step, encoding="utf-8")
        time.sleep(float(os.environ.get("IVR_SHOP_PAUSE_S", "120")))


def run_once(url: str, now_fn: Callable[[], datetime], operation: str, key: str, request: dict,
             work: Callable[[Session, datetime], str], load: Callable[[str], T]) -> T:
    """Run ``work`` once per idempotency key, in one transaction, retrying serialisation conflicts."""
    if not key or not isinstance(key, str) or len(key) > 128:
        raise NotAllowed("invalid_request", "an idempotency key of 1..128 characters is required")
    digest = hashlib.sha256(json.dumps([operation, request], sort_keys=True, ensure_ascii=False,
                                       default=str).encode()).hexdigest()
    integrity_left, busy_left = 3, 10
    while True:
        try:
            with transaction(url) as s:
                row = s.get(IdempotencyKey, key)
                if row is not None:
                    if row.operation != operation or row.request_hash != digest:
                        raise NotAllowed("idempotency_conflict", "this key was used for a different request")
                    ref = row.result_ref
                else:
                    now = now_fn()
                    row = IdempotencyKey(key=key, operation=operation, request_hash=digest, result_ref="",
                                         created_at=now)
                    s.add(row)
                    s.flush()  # claims the key: a concurrent duplicate blocks here, then fails
                    pause(f"{operation}.key_claimed")
                    ref = work(s, now)
                    row.result_ref = ref
                    s.flush()
                    pause(f"{operation}.before_commit")
            pause(f"{operation}.committed")
            return load(ref)
        except IntegrityError:
            integrity_left -= 1  # lost a race (same key, or a second open RMA): re-read and decide again
            if integrity_left <= 0:
                raise
        except OperationalError as e:
            if not _is_busy(e):
                raise OmsUnavailable(f"shop database error: {type(e.orig).__name__}") from e
            busy_left -= 1
            if busy_left <= 0:
                raise OmsUnavailable("the shop database is busy") from e
        except DBAPIError as e:
            if _sqlstate(e) not in _RETRYABLE_PG:
                raise
            busy_left -= 1
            if busy_left <= 0:
                raise OmsUnavailable("the shop database is busy") from e
        time.sleep(0.02 * (1 + secrets.randbelow(5)))


def _is_busy(e: OperationalError) -> bool:
    msg = str(e.orig).lower()
    return "locked" in msg or "busy" in msg or _sqlstate(e) in _RETRYABLE_PG


def _sqlstate(e: DBAPIError) -> str:
    return str(getattr(e.orig, "sqlstate", "") or getattr(e.orig, "pgcode", "") or "")
