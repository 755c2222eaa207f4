"""Identity and verification as an attacker would try them, against the real dialogue, NLU and a seeded SQLite shop:
a caller ID (trusted or not) reveals nothing beyond "an order exists", wrong phone tails are counted across calls
and lock self-service, and what callers answer is masked in records, on the agent card and in tickets."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from test_shop_helpers import db_url, pg_server  # noqa: F401  (fixtures: SQLite and PostgreSQL)

from ivr.dialog.manager import DialogManager
from ivr.lang import get_pack
from ivr.services.db import session_factory
from ivr.services.records import RecordStore
from ivr.services.records.capture import RecordedDialog
from ivr.services.records.period import parse_window
from ivr.services.records.retention import purge
from ivr.services.records.stats import Filters, Stats
from ivr.services.shop import SqlShop, seed_demo
from ivr.services.shop.lockout import LockoutStore
from ivr.services.shop.lockout_models import VerifyFailure
from ivr.services.shop.models import AuditLog, IdempotencyKey, TicketRow

PACK = get_pack("zh-CN")
ZHANG, ORDER, UNPAID, TAIL = "13800138000", "100000000002", "100000000004", "8000"  # docs/oms.md demo orders
CN_DIGITS = re.compile("[零〇一二两三四五六七八九幺]")


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    """The demo shop (seed_demo's defaults: what `ivr` seeds into an empty shop), seeded once per module."""
    path = tmp_path_factory.mktemp("demo") / "shop.db"
    seed_demo(f"sqlite:///{path}")
    return path


def _copy_db(src: Path, dest: Path) -> str:
    """A copy of the SQLite database ``src`` at ``dest`` (SQLite's backup API: WAL content included); its URL."""
    a, b = sqlite3.connect(src), sqlite3.connect(dest)
    try:
        a.backup(b)
    finally:
        b.close()
        a.close()
    return f"sqlite:///{dest}"


@pytest.fixture()
def shop(tmp_path, demo_db) -> SqlShop:
    """A freshly seeded demo shop of this test's own (a copy of the module's: seeding is ~0.35 CPU-s a time)."""
    return SqlShop(_copy_db(demo_db, tmp_path / "shop.db"))


def _spoken(digits: str) -> str:
    return PACK.say_digits(digits)


def _secrets_of(shop: SqlShop, phone: str) -> list[str]:
    """What must never be said before verification: every product and date word of this phone's orders."""
    words = []
    for o in shop.orders_for_phone(phone, 20):
        words += [i.name for i in o.items]
    return words + ["签收", "运输", "发货", "付款", "月", "号购买"]


def _call(shop: SqlShop, caller_id: str = ZHANG, *, trusted: bool = False, call_id: str = "") -> DialogManager:
    m = DialogManager(shop, caller_id=caller_id, caller_id_trusted=trusted, channel="sip",
                      call_id=call_id or f"t-{datetime.now(UTC):%H%M%S%f}", lockout=LockoutStore(shop.url))
    m.start()
    return m


def test_untrusted_caller_id_is_only_a_hint(shop) -> None:
    m = _call(shop)
    r = m.handle_dtmf("2")  # logistics by keypad
    assert r.state == "ask_order" and "订单号" in r.text
    for word in _secrets_of(shop, ZHANG) + ["最近有一笔"]:
        assert word not in r.text, f"an untrusted caller ID disclosed {word!r}: {r.text}"
    r = m.handle_dtmf(ORDER + "#")
    assert r.state == "verify" and "后四位" in r.text
    assert not any(w in r.text for w in _secrets_of(shop, ZHANG))
    r = m.handle_dtmf(TAIL)
    assert "caller_verified" in r.actions and "logistics_read" in r.actions


def test_trusted_caller_id_hears_an_order_exists_and_still_verifies_before_a_write(shop) -> None:
    m = _call(shop, trusted=True)
    r = m.handle_text("我想取消订单")
    assert "recent_order_hinted" in r.actions and "最近有一笔订单" in r.text and r.state == "ask_order"
    assert not any(w in r.text for w in _secrets_of(shop, ZHANG)), r.text
    r = m.handle_text(f"订单号 {_spoken(UNPAID)}")
    assert r.state == "verify" and "order_cancelled" not in r.actions
    assert "确认" not in r.text and not any(w in r.text for w in _secrets_of(shop, ZHANG))
    r = m.handle_text("是的")  # "yes" is no answer to the verification question
    assert r.state == "verify" and "order_cancelled" not in r.actions
    r = m.handle_dtmf(TAIL)
    assert "caller_verified" in r.actions and r.state == "cancel_order.confirm"
    assert "order_cancelled" in m.handle_text("是的").actions


def test_chat_with_a_caller_id_discloses_nothing(tmp_path, demo_db) -> None:
    env_dir = tmp_path / "data"
    env_dir.mkdir()
    _copy_db(demo_db, env_dir / "ivr.db")  # the demo shop `ivr chat` would seed into the empty data dir
    for extra in ([], ["--trusted"]):
        proc = subprocess.run(
            [sys.executable, "-m", "ivr", "chat", "--json", "--no-record", "--caller-id", ZHANG, *extra],
            input="#dtmf 2\n#hangup\n", capture_output=True, text=True, timeout=240,
            env={**__import__("os").environ, "IVR_DATA_DIR": str(env_dir)})
        assert proc.returncode == 0, proc.stderr
        turns = [json.loads(x) for x in proc.stdout.splitlines()]
        said = " ".join(t["reply"] for t in turns)
        assert turns[1]["state"] == "ask_order"
        for word in ("小米", "手机", "签收", "运输", "快递", "月"):
            assert word not in said, f"ivr chat {' '.join(extra)} disclosed {word!r}: {said}"
        assert ("最近有一笔订单" in said) == bool(extra)


def _wrong_tails(m: DialogManager, n: int) -> list:
    replies = []
    for _ in range(n):
        replies.append(m.handle_dtmf("1111"))
    return replies


def test_five_wrong_tails_over_two_calls_lock_the_order(shop) -> None:
    # call 1: three wrong tails (the per-call limit)
    m1 = _call(shop, call_id="lock-1")
    m1.handle_text(f"查一下订单 {_spoken(ORDER)}")
    r = _wrong_tails(m1, 3)[-1]
    assert r.state == "offer_human" and "self_service_locked" not in r.actions
    # call 2 (a new dialogue, a new store object: the count is in the database): two more lock the order
    m2 = _call(shop, call_id="lock-2")
    assert m2.handle_text(f"查一下订单 {_spoken(ORDER)}").state == "verify"
    first, fifth = _wrong_tails(m2, 2)
    assert "verification_failed" in first.actions and first.state == "verify"
    assert "self_service_locked" in fifth.actions and fifth.state == "offer_human"
    assert "暂时不能自助办理" in fifth.text and "人工" in fifth.text
    card = m2.handle_text("好的").transfer
    assert card is not None and card.reason == "verify_locked"
    v = card.handoff["verification"]
    assert v["self_service_locked"] and v["lock"]["order_locked"] and v["lock"]["order_failures"] == 5
    assert "自助服务已锁定" in card.handoff["summary"]
    assert card.handoff["order"] == {"order_id": ORDER, "verified": False}  # no detail of an unproven order
    # call 3: the lock is heard at once with the offer of a person; even the right tail cannot be tried
    m3 = _call(shop, caller_id="", call_id="lock-3")
    r = m3.handle_text(f"查一下订单 {_spoken(ORDER)}")
    assert "self_service_locked" in r.actions and r.state == "offer_human"
    assert "暂时不能自助办理" in r.text and "人工" in r.text and "后四位" not in r.text
    assert not any(w in r.text for w in _secrets_of(shop, ZHANG))
    assert m3.handle_dtmf(TAIL).state != "main_menu"  # '8000' is not a yes: nothing is read
    # the caller is locked too (per caller key): another of 张伟's orders is refused from that number
    r = _call(shop, call_id="lock-4").handle_text(f"订单 {_spoken(UNPAID)} 帮我取消")
    assert "self_service_locked" in r.actions
    # ... but not for somebody else's number and order
    other = _call(shop, caller_id="13912345678", call_id="lock-5")
    assert other.handle_text(f"查一下订单 {_spoken('100000000003')}").state == "verify"
    # the dashboard JSON lists the locked order
    locks = Stats(shop.url).report(Filters(parse_window("today"), ""))["self_service_locks"]
    assert locks["count"] == 1 and locks["orders"][0]["order_id"] == ORDER and locks["orders"][0]["failures"] == 5


def test_failures_are_counted_in_the_database_on_both_backends(db_url) -> None:  # noqa: F811
    from ivr.services.migrate import ensure_schema

    ensure_schema(db_url)
    now = datetime.now(UTC)
    a, b = LockoutStore(db_url), LockoutStore(db_url)  # two processes' stores over one database
    for i in range(4):
        assert not (a if i % 2 else b).record_failure(ORDER, caller_id=ZHANG, call_id=f"c{i}", now=now).locked
    st = a.record_failure(ORDER, caller_id="", call_id="c5", now=now)
    assert st.order_locked and not st.caller_locked and st.order_failures == 5
    assert b.status(ORDER, caller_id=ZHANG, now=now).caller_failures == 4
    assert st.until is not None and abs((st.until - now).total_seconds() - 24 * 3600) < 1
    assert [o["order_id"] for o in b.locked_orders(now)] == [ORDER]
    assert a.purge_before(now + timedelta(seconds=1)) == 5 and not b.status(ORDER, now=now).locked


def test_lock_lifts_after_the_window(shop) -> None:
    store = LockoutStore(shop.url, max_failures=5, window_h=24)
    old = datetime.now(UTC) - timedelta(hours=25)
    for i in range(5):
        store.record_failure(ORDER, caller_id=ZHANG, call_id=f"old-{i}", now=old)
    assert store.status(ORDER, caller_id=ZHANG, now=old).locked
    assert not store.status(ORDER, caller_id=ZHANG).locked  # 24 h later the failures have aged out
    with session_factory(shop.url)() as s:
        keys = set(s.scalars(select(VerifyFailure.caller_key)))
    assert keys and ZHANG not in str(keys)  # the caller is stored as a keyed hash only


def test_verification_answers_addresses_and_names_are_masked_everywhere(shop, tmp_path) -> None:
    store = RecordStore(shop.url)
    m = _call(shop, call_id="mask-1")
    call = RecordedDialog(m, store, channel="sip", caller_id=ZHANG, call_id="mask-1")
    call.start()
    call.text(f"我要改收货地址 订单号 {_spoken(UNPAID)}")
    r = call.text("尾号是五六七八")  # wrong, spoken in Chinese digits
    assert "verification_failed" in r.actions
    r = call.text("幺两三四")
    r = call.text("八零零零")
    assert "caller_verified" in r.actions and r.state == "change_address.address"
    r = call.text("上海市浦东新区张江路一百号三号楼 收货人是王小明")
    assert "张江路" in r.text  # the caller hears the read-back ...
    r = call.text("转人工")
    handoff = r.transfer.handoff
    rec = call.finish()
    ticket = shop.create_ticket("callback", "callback (no agent): human_request", ZHANG, UNPAID,
                                {"call_id": "mask-1", "handoff": handoff}, "mask-1:transfer-callback")
    with session_factory(shop.url)() as s:
        row = s.get(TicketRow, ticket.ticket_id)
        stored_ticket = json.dumps([row.summary, row.context], ensure_ascii=False)
    saved = store.get(rec.call_id)
    stored_turns = json.dumps([[t.caller_text, t.bot_text, t.slots] for t in saved.turns], ensure_ascii=False)
    for where, text in (("record", stored_turns), ("agent card", json.dumps(handoff, ensure_ascii=False)),
                        ("ticket", stored_ticket)):
        for secret in ("五六七八", "幺两三四", "八零零零", "8000", "5678", "1234", "张江路", "王小明", ZHANG):
            assert secret not in text, f"{secret!r} in the {where}"
        assert "上海市浦东新区****" in text and "王*" in text, where  # ... and what is kept is enough to help
    secret_turns = [t.caller_text for t in saved.turns if t.caller_text.startswith("尾号") or "*" in t.caller_text]
    assert secret_turns and not any(CN_DIGITS.search(t) for t in secret_turns)


def test_records_purge_covers_tickets_audit_log_idempotency_keys_and_failures(shop) -> None:
    shop.cancel_order(UNPAID, "caller_request", "call-old:cancel")  # audit row + idempotency key
    shop.create_ticket("callback", "请回电", ZHANG, ORDER, {}, "call-old:callback")
    LockoutStore(shop.url).record_failure(ORDER, caller_id=ZHANG, call_id="call-old")

    def count(model) -> int:
        with session_factory(shop.url)() as s:
            return int(s.scalar(select(func.count()).select_from(model)))

    before = {m: count(m) for m in (TicketRow, AuditLog, IdempotencyKey, VerifyFailure)}
    assert all(before.values())
    store = RecordStore(shop.url)
    kept = purge(store, datetime.now(UTC) - timedelta(days=1))
    assert kept.shop_rows == {"tickets": 0, "audit_log": 0, "idempotency_keys": 0, "verify_failures": 0}
    dry = purge(store, datetime.now(UTC) + timedelta(minutes=1), dry_run=True)
    assert dry.shop_rows["tickets"] == before[TicketRow] and count(TicketRow) == before[TicketRow]
    done = purge(store, datetime.now(UTC) + timedelta(minutes=1))
    assert done.as_dict()["idempotency_keys"] == before[IdempotencyKey]
    assert {m: count(m) for m in before} == {m: 0 for m in before}


def test_the_shop_can_ask_for_more_phone_digits(shop) -> None:
    from ivr.dialog.policy import DialogPolicy

    m = DialogManager(shop, caller_id="", channel="webrtc", policy=DialogPolicy(verify_tail_digits=6),
                      lockout=LockoutStore(shop.url))
    m.start()
    m.handle_dtmf("1")
    r = m.handle_dtmf(ORDER + "#")
    assert r.state == "verify" and "后六位" in r.text
    assert m.handle_dtmf(TAIL).segments == []  # four keys are not the answer yet: it waits for six
    r = m.handle_dtmf("00")  # the phone ends 138000: keys 8000 then 00 make 800000, wrong
    assert "verification_failed" in r.actions and "后六位" in r.text
    r = m.handle_text(f"后六位是 {_spoken(ZHANG[-6:])}")
    assert "caller_verified" in r.actions and "order_read" in r.actions
