"""Durable writes through the whole dialogue: a caller process runs real cancel and return conversations (keypad)
against a real SQLite shop and is killed with SIGKILL again and again, at named steps inside and right after the
write's transaction (the store's fault-injection hook) and at random moments. Every write the caller heard
confirmed is in the database after the restart, and no order is ever written twice (a caller who calls back is
told the order is already cancelled / already has its return). SQLite commits with ``synchronous=FULL`` so a
confirmed write also survives a power loss (the WAL is fsynced before the commit returns).
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import select as sql_select
from sqlalchemy import text

from ivr.services.db import get_engine, session_factory
from ivr.services.shop import SqlShop, seed_demo
from ivr.services.shop.models import AuditLog, Order, RefundRow, ReturnRow
from ivr.services.shop.store import PAUSE_ENV

pytestmark = pytest.mark.timeout(600)

# One caller after another, each a new call (new call id) on the keypad: menu key, order number, phone tail, then
# '1' for reason / pickup slot / confirmation. Prints what the caller heard: HEARD (a confirmed write), DONE (the
# order already had its write: a callback after a crash), SKIP (not eligible). Keys only: the dialogue never asks
# the NLU (only spoken turns do), so the caller does not train one (1.5 CPU-s per start); one that would be asked
# fails the caller process, and so the test.
CHILD = r"""
import sys, uuid
from ivr.dialog.manager import DialogManager
from ivr.services.shop import SqlShop
from ivr.services.shop.lockout import MemoryLockout


class KeysOnly:
    def parse(self, text, prev_agent_text=None, expected=None):
        raise SystemExit(f"the keypad call asked the NLU about {text!r}")


shop = SqlShop(sys.argv[1])
print("READY", flush=True)
for item in sys.argv[2:]:
    kind, order = item.split(":")
    o = shop.get_order(order)
    m = DialogManager(shop, caller_id="", channel="sip", call_id=f"dur-{uuid.uuid4().hex[:8]}", asr_available=False,
                      lockout=MemoryLockout(), nlu=KeysOnly())
    r = m.start()
    keys = {"cancel": "6", "return": "3"}[kind]
    outcome = "SKIP stuck"
    for _ in range(12):
        s = r.state
        key = keys if s == "main_menu" and keys else (order + "#" if s == "ask_order" else
              (o.phone[-4:] if s == "verify" else "1"))
        keys = "" if s == "main_menu" else keys
        r = m.handle_dtmf(key)
        if "order_cancelled" in r.actions or "return_created" in r.actions:
            ref = m.ctx.slots.get("rma_id", "-")
            outcome = f"HEARD {kind} {order} {ref}"
            break
        done = [a for a in r.actions if a in ("return_exists", "not_allowed:already_cancelled")]
        if done:
            outcome = f"DONE {kind} {order} {done[0]}"
            break
        refused = [a for a in r.actions if a.startswith("not_allowed") or a == "not_eligible"]
        if refused or r.transfer is not None:
            outcome = f"SKIP {kind} {order} {(refused or ['transfer'])[0]}"
            break
    print(outcome, flush=True)
print("FINISHED", flush=True)
"""

STEPS = ["cancel_order.key_claimed", "cancel_order.updated", "cancel_order.before_commit", "cancel_order.committed",
         "create_return.key_claimed", "create_return.rma_inserted", "create_return.before_commit",
         "create_return.committed"]


def _items(url: str) -> list[str]:
    """Paid orders to cancel and recently delivered ones to return (quality reason: 15-day window)."""
    shop = SqlShop(url)
    now = datetime.now(UTC)
    with session_factory(url)() as s:
        paid = list(s.scalars(sql_select(Order.order_id).where(Order.status == "paid").order_by(Order.order_id)))
        delivered = list(s.scalars(sql_select(Order.order_id).where(Order.status == "delivered")
                                   .order_by(Order.order_id)))
    returnable = []
    for oid in delivered:
        o = shop.get_order(oid)
        sh = o.shipment
        if sh and sh.delivered_at and (now - sh.delivered_at).days <= 10 and not o.returns:
            returnable.append(oid)
    return [f"cancel:{o}" for o in paid[:6]] + [f"return:{o}" for o in returnable[:6]]


def _run(url: str, items: list[str], tmp_path, *, step: str | None = None, kill_after_s: float | None = None
         ) -> tuple[list[str], bool]:
    """Run the caller over ``items``; kill -9 at ``step`` (when reached) or after ``kill_after_s``. Returns the
    lines printed and whether the process was killed."""
    marker = tmp_path / f"paused-{time.monotonic_ns()}"
    env = {**os.environ, "IVR_SHOP_PAUSE_FILE": str(marker), "IVR_SHOP_PAUSE_S": "120"}
    env.pop(PAUSE_ENV, None)
    if step:
        env[PAUSE_ENV] = step
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, *items], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    killed = False
    started = None
    deadline = time.monotonic() + 240
    try:
        while True:
            if marker.exists() or (started is not None and kill_after_s is not None
                                   and time.monotonic() - started >= kill_after_s):
                child.send_signal(signal.SIGKILL)
                killed = True
                break
            ready, _, _ = select.select([child.stdout], [], [], 0.005)
            if ready:
                line = child.stdout.readline()
                if not line:
                    break
                lines.append(line.strip())
                if line.startswith("READY"):
                    started = time.monotonic()
            assert time.monotonic() < deadline, f"caller process stuck: {lines}"
    finally:
        if child.poll() is None and not killed:
            child.kill()
        child.wait(timeout=30)
    lines += [x.strip() for x in child.stdout.read().splitlines()]  # what it printed before the kill landed
    err = child.stderr.read()
    assert killed or child.returncode == 0, f"caller process failed: {err[-1500:]}"
    return lines, killed


def test_sqlite_commits_are_fsynced(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    seed_demo(url, customers=5, orders=10)
    with get_engine(url).connect() as c:
        assert c.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_kill_9_during_cancel_and_return_calls_loses_and_duplicates_nothing(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    seed_demo(url, customers=40, orders=160)
    items = _items(url)
    assert sum(i.startswith("cancel") for i in items) >= 4 and sum(i.startswith("return") for i in items) >= 3
    heard: dict[str, str] = {}  # item -> reference the caller heard (RMA id or '-')
    finished: set[str] = set()
    kills = 0
    rng = random.Random(12)
    plan: list[tuple[str | None, float | None]] = [(s, None) for s in STEPS]
    plan += [(None, rng.uniform(0.05, 1.5)) for _ in range(3)]  # and at 3 random moments (the named steps: above)
    for step, after in plan:
        todo = [i for i in items if i not in finished]
        if not todo:  # every call got its answer: no write left to interrupt (the last restart below still runs)
            break
        if step and not any(i.startswith("cancel" if step.startswith("cancel") else "return") for i in todo):
            continue
        lines, killed = _run(url, todo, tmp_path, step=step, kill_after_s=after)
        kills += killed
        for line in lines:
            word, *rest = line.split()
            if word in ("HEARD", "DONE", "SKIP"):
                item = f"{rest[0]}:{rest[1]}"
                finished.add(item)
                if word == "HEARD":
                    assert item not in heard, f"{item} was confirmed twice"
                    heard[item] = rest[2]
        _check(url, items, heard)
    lines, killed = _run(url, [i for i in items if i not in finished], tmp_path)  # the last restart runs through
    assert not killed and lines[-1] == "FINISHED"
    for line in lines:
        word, *rest = line.split()
        if word == "HEARD":
            item = f"{rest[0]}:{rest[1]}"
            assert item not in heard, f"{item} was confirmed twice"
            heard[item] = rest[2]
    assert kills >= len(STEPS), f"only {kills} kills landed"
    _check(url, items, heard)
    # every eligible order ends with exactly one write
    counts = _writes(url, items)
    for item in items:
        kind, oid = item.split(":")
        assert counts[item] == 1, f"{item}: {counts[item]} writes"


def _writes(url: str, items: list[str]) -> Counter:
    out: Counter = Counter()
    with session_factory(url)() as s:
        for item in items:
            kind, oid = item.split(":")
            if kind == "cancel":
                out[item] = len(s.scalars(sql_select(AuditLog.id).where(
                    AuditLog.order_id == oid, AuditLog.action.like("%cancel%"))).all())
                refunds = len(s.scalars(sql_select(RefundRow.refund_id).where(RefundRow.order_id == oid)).all())
                assert refunds <= 1, f"{item}: {refunds} refunds"
            else:
                out[item] = len(s.scalars(sql_select(ReturnRow.rma_id).where(ReturnRow.order_id == oid)).all())
    return out


def _check(url: str, items: list[str], heard: dict[str, str]) -> None:
    """0 lost: every confirmed write is there (with the RMA the caller heard); 0 duplicated: at most one each."""
    counts = _writes(url, items)
    for item, n in counts.items():
        assert n <= 1, f"{item} written {n} times"
    with session_factory(url)() as s:
        for item, ref in heard.items():
            kind, oid = item.split(":")
            if kind == "cancel":
                assert s.get(Order, oid).status == "cancelled", f"confirmed cancellation of {oid} lost"
            else:
                rmas = s.scalars(sql_select(ReturnRow.rma_id).where(ReturnRow.order_id == oid)).all()
                assert rmas == [ref], f"confirmed return {ref} of {oid} lost (found {rmas})"
