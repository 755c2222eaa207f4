"""SqlShop on real SQLite and real PostgreSQL: the well-known demo orders, business rules with stable codes,
idempotent writes (same key -> same result, one row), audit rows, and concurrent duplicates."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from test_shop_helpers import SHANGHAI, db_url, noon, pg_server, shop_today  # noqa: F401  (fixtures)

from ivr.services.db import session_factory
from ivr.services.shop import NotAllowed, NotFound, ShopService, SqlShop, seed_demo
from ivr.services.shop.models import AuditLog, IdempotencyKey, RefundRow, ReturnRow

LATE, RETURNABLE, OLD, PAID, UNPAID, REFUNDED, PRICE_DROP, TEN_DAYS, CANCELLED, FOOD, ON_TIME = (
    f"1000000000{i:02d}" for i in range(1, 12))


@pytest.fixture
def shop(db_url) -> SqlShop:  # noqa: F811
    today = shop_today()
    seed_demo(db_url, today=today, customers=30, orders=80)
    return SqlShop(db_url, clock=noon(today))


def count(url: str, model, *where) -> int:
    with session_factory(url)() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def code_of(fn, *args) -> str:
    with pytest.raises(NotAllowed) as e:
        fn(*args)
    return e.value.code


def test_it_is_a_shop_service(shop):
    assert isinstance(shop, ShopService)


def test_well_known_orders_read_as_documented(shop):
    late = shop.get_order(LATE)
    assert late.status == "in_transit" and late.phone == "13800138000" and late.customer_name == "张伟"
    assert late.shipment.carrier == "顺丰速运" and late.extra["days_late"] == 2
    assert late.shipment.eta > late.shipment.promised_date and "滞留" in " ".join(e.description for e in late.shipment.events)
    assert late.created_at.tzinfo is not None and late.total_cents == late.items[0].unit_price_cents
    ok = shop.get_order(RETURNABLE)
    assert ok.status == "delivered" and ok.extra["can_return"] and ok.invoice.status == "issued"
    today = shop_today()
    assert ok.extra["return_deadline"] == (today + timedelta(days=4)).isoformat()  # delivered 3 days ago + 7
    assert shop.get_order(PRICE_DROP).shipment.delivered_at.astimezone(SHANGHAI).date() == today - timedelta(days=1)
    assert not shop.get_order(OLD).extra["can_return_for_quality"]
    ten = shop.get_order(TEN_DAYS).extra
    assert not ten["can_return"] and ten["can_return_for_quality"]
    assert ten["quality_return_deadline"] == (today + timedelta(days=5)).isoformat()
    assert shop.get_order(PAID).extra["can_cancel"] and not late.extra["can_cancel"]
    refund = shop.get_order(REFUNDED).refunds[-1]
    assert refund.status == "processing" and refund.method == "original" and refund.expected_by > shop_today()
    assert shop.get_order(ON_TIME).extra["days_late"] == 0
    assert shop.get_order("999999999999") is None and shop.get_order("") is None
    assert shop.get_order(" 1000 0000 0002 ").order_id == RETURNABLE  # spaces as a recogniser writes digits


def test_orders_for_phone_most_recent_first_in_any_format(shop):
    orders = shop.orders_for_phone("+86 138-0013-8000", limit=10)
    assert {o.order_id for o in orders} == {LATE, RETURNABLE, OLD, PAID, TEN_DAYS}
    assert [o.created_at for o in orders] == sorted((o.created_at for o in orders), reverse=True)
    assert len(shop.orders_for_phone("13800138000", limit=2)) == 2
    assert shop.orders_for_phone("13000000000") == [] and shop.orders_for_phone("") == []


@pytest.mark.parametrize(("order", "kind", "reason", "code"), [
    (OLD, "return", "no_reason:不想要了", "return_window_closed"),
    (OLD, "exchange", "quality:坏了", "return_window_closed"),
    (TEN_DAYS, "return", "size:尺码不合适", "return_window_closed"),
    (FOOD, "return", "no_reason", "category_not_returnable"),
    (LATE, "return", "no_reason", "not_delivered"),
    (PAID, "exchange", "size", "not_delivered"),
    (CANCELLED, "return", "no_reason", "already_cancelled"),
    (REFUNDED, "return", "quality", "already_refunded"),
])
def test_return_rules(shop, order, kind, reason, code):
    assert code_of(shop.create_return, order, kind, reason, "明天上午", f"k-{order}-{kind}") == code
    assert count(shop.url, ReturnRow, ReturnRow.order_id == order, ReturnRow.open_order_id.is_not(None)) == 0


def test_quality_problems_have_the_longer_window(shop):
    rma = shop.create_return(TEN_DAYS, "exchange", "quality:扫不干净", "后天上午", "q1")
    assert rma.kind == "exchange" and rma.status == "requested" and rma.order_id == TEN_DAYS
    assert shop.create_return(FOOD, "return", "damaged:蟹死了", "明天上午", "q2").kind == "return"


def test_same_return_twice_makes_one_rma(shop):
    first = shop.create_return(RETURNABLE, "return", "size:尺码不合适", "明天上午", "call-1:return")
    again = shop.create_return(RETURNABLE, "return", "size:尺码不合适", "明天上午", "call-1:return")
    assert again == first and len(first.rma_id) == 12 and first.rma_id.isdigit()
    assert count(shop.url, ReturnRow, ReturnRow.order_id == RETURNABLE) == 1
    assert count(shop.url, AuditLog, AuditLog.entity_id == first.rma_id) == 1
    # a new call (new key) asking again is told an RMA exists; a reused key with other data is refused
    assert code_of(shop.create_return, RETURNABLE, "return", "size", "明天上午", "call-2:return") == "return_exists"
    assert code_of(shop.create_return, RETURNABLE, "exchange", "size", "明天上午", "call-1:return") == \
        "idempotency_conflict"
    snap = shop.get_order(RETURNABLE)
    assert [r.rma_id for r in snap.returns] == [first.rma_id] and not snap.extra["can_return"]


def test_cancel_before_shipment_only_with_refund_of_paid_orders(shop):
    snap = shop.cancel_order(PAID, "不想要了", "c1")
    assert snap.status == "cancelled" and not snap.extra["can_cancel"]
    assert [(r.amount_cents, r.method, r.status) for r in snap.refunds] == [(snap.total_cents, "original", "processing")]
    assert shop.cancel_order(PAID, "不想要了", "c1") == snap  # same key: same answer, no second refund
    assert count(shop.url, RefundRow, RefundRow.order_id == PAID) == 1
    assert code_of(shop.cancel_order, PAID, "不想要了", "c2") == "already_cancelled"
    assert code_of(shop.cancel_order, LATE, "", "c3") == "already_shipped"
    assert code_of(shop.cancel_order, RETURNABLE, "", "c4") == "already_shipped"
    unpaid = shop.cancel_order(UNPAID, "", "c5")
    assert unpaid.status == "cancelled" and unpaid.refunds == ()
    with pytest.raises(NotFound):
        shop.cancel_order("123456789012", "", "c6")


def test_address_and_slot_change_before_shipment_with_masked_audit(shop):
    new = "北京市海淀区中关村大街27号科技大厦5层"
    snap = shop.change_address(PAID, new, "a1")
    assert snap.address == new
    audit = shop.audit_entries(PAID, limit=1)[0]
    assert audit["action"] == "address_changed" and audit["idempotency_key"] == "a1"
    assert "中关村" not in str(audit["detail"]) and audit["detail"]["after"].startswith("北京")
    assert shop.change_delivery_slot(PAID, "周末送货", "s1").delivery_slot == "周末送货"
    assert code_of(shop.change_address, LATE, new, "a2") == "already_shipped"
    assert code_of(shop.change_delivery_slot, RETURNABLE, "周末送货", "s2") == "already_shipped"
    assert code_of(shop.change_address, PAID, "北京", "a3") == "invalid_address"
    assert code_of(shop.change_delivery_slot, PAID, "  ", "s3") == "invalid_slot"


def test_price_protection_refunds_the_drop_once(shop):
    refund = shop.request_price_protection(PRICE_DROP, "p1")
    assert refund.amount_cents == 20000 and refund.status == "processing" and refund.expected_by is not None
    assert shop.request_price_protection(PRICE_DROP, "p1") == refund
    assert shop.request_price_protection(PRICE_DROP, "p2") is None  # difference already refunded
    assert code_of(shop.request_price_protection, OLD, "p3") == "price_protect_window_closed"
    assert code_of(shop.request_price_protection, FOOD, "p4") == "price_protect_not_supported"
    assert code_of(shop.request_price_protection, UNPAID, "p5") == "not_paid"
    assert code_of(shop.request_price_protection, CANCELLED, "p6") == "already_cancelled"


def test_invoices(shop):
    inv = shop.resend_invoice(PRICE_DROP, "finance@example.com", "i1")
    assert inv.email == "finance@example.com" and inv.status == "issued"
    assert shop.resend_invoice(PRICE_DROP, None, "i2").email == "finance@example.com"
    assert code_of(shop.resend_invoice, PRICE_DROP, "not-an-email", "i3") == "invalid_email"
    assert code_of(shop.resend_invoice, OLD, None, "i4") == "no_invoice"
    changed = shop.change_invoice_title(RETURNABLE, "杭州青禾网络科技有限公司", "91330106MA2CDEFG1X", "t1")
    assert (changed.title, changed.status) == ("杭州青禾网络科技有限公司", "pending")
    assert code_of(shop.change_invoice_title, RETURNABLE, "某公司", "123", "t2") == "invalid_tax_id"
    assert code_of(shop.change_invoice_title, UNPAID, "个人", "", "t3") == "not_paid"


def test_tickets_and_promotions(shop):
    t = shop.create_ticket("complaint", "快递太慢 回电 13912345678", "13912345678", LATE, {"sentiment": -0.8}, "tk1")
    assert t.kind == "complaint" and t.status == "open" and "13912345678" not in t.summary
    assert shop.create_ticket("complaint", "快递太慢 回电 13912345678", "13912345678", LATE,
                              {"sentiment": -0.8}, "tk1") == t
    assert code_of(shop.create_ticket, "praise", "x", "", None, {}, "tk2") == "invalid_request"
    promos = shop.current_promotions()
    assert promos and all({"title", "detail", "ends"} <= set(p) for p in promos)
    assert "秋装上新 第二件半价" not in {p["title"] for p in promos}  # ended five days ago
    assert all(p["ends"] >= shop_today().isoformat() for p in promos)


def test_a_write_needs_an_idempotency_key(shop):
    assert code_of(shop.cancel_order, PAID, "", "") == "invalid_request"


def test_concurrent_duplicates_create_one_rma(shop):
    """Eight callers at once: same key -> one RMA for all; different keys -> one wins, others 'return_exists'."""
    barrier = threading.Barrier(8)

    def same_key(_):
        barrier.wait()
        return shop.create_return(RETURNABLE, "return", "size", "明天上午", "dup-key").rma_id

    with ThreadPoolExecutor(8) as ex:
        ids = set(ex.map(same_key, range(8)))
    assert len(ids) == 1
    assert count(shop.url, ReturnRow, ReturnRow.order_id == RETURNABLE) == 1

    barrier2 = threading.Barrier(8)

    def other_keys(i):
        barrier2.wait()
        try:
            return shop.create_return(PRICE_DROP, "return", "no_reason", "明天上午", f"key-{i}").rma_id
        except NotAllowed as e:
            return e.code

    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(other_keys, range(8)))
    assert sorted(r == "return_exists" for r in results) == [False] + [True] * 7, results
    assert count(shop.url, ReturnRow, ReturnRow.order_id == PRICE_DROP) == 1
    assert count(shop.url, IdempotencyKey, IdempotencyKey.operation == "create_return") == 2
