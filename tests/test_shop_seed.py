"""The demo shop: big and varied enough to test a hotline, realistic, deterministic, relative to today."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from test_shop_helpers import db_url, pg_server, shop_today  # noqa: F401  (fixtures)

from ivr.config import load_settings
from ivr.services.db import session_factory
from ivr.services.shop import FIXED_ORDERS, SqlShop, open_shop, seed_demo, seed_if_empty
from ivr.services.shop.http_oms import HttpShop
from ivr.services.shop.models import Order
from ivr.services.shop.seed import SHOP_TZ, build_demo

TODAY = date(2025, 3, 14)
MOBILE = re.compile(r"^1[3-9]\d{9}$")


@pytest.fixture(scope="module")
def demo():
    """build_demo(7, TODAY), built once for the tests that only read it."""
    return build_demo(7, TODAY)


def test_volume_and_every_state(demo):
    rows = demo
    assert len(rows.customers) >= 200 and len(rows.orders) >= 1000
    statuses = Counter(o["status"] for o in rows.orders)
    for status in ("unpaid", "paid", "shipped", "in_transit", "delivered", "returned", "refunded", "cancelled"):
        assert statuses[status] >= 20, statuses
    assert len({o["customer_id"] for o in rows.orders}) >= 150  # orders spread over many customers


def test_deterministic_for_a_seed_and_different_for_another(demo):
    a, b, c = demo, build_demo(7, TODAY), build_demo(8, TODAY)
    assert a.orders == b.orders and a.events == b.events and a.refunds == b.refunds
    assert [o["order_id"] for o in a.orders] != [o["order_id"] for o in c.orders]
    assert {o for o in FIXED_ORDERS} <= {o["order_id"] for o in c.orders}  # fixed orders in every seed


def test_realistic_ids_phones_products_carriers_and_places(demo):
    rows = demo
    ids = [o["order_id"] for o in rows.orders]
    assert len(set(ids)) == len(ids) and all(i.isdigit() and len(i) >= 12 for i in ids)
    phones = [c["phone"] for c in rows.customers]
    assert len(set(phones)) == len(phones) and all(MOBILE.match(p) for p in phones)
    assert {p["category"] for p in rows.products} >= {"phones", "appliances", "clothes", "food", "books", "beauty"}
    assert any("华为" in p["name"] for p in rows.products) and any("三体" in p["name"] for p in rows.products)
    assert {s["carrier"] for s in rows.shipments} == {"顺丰速运", "京东物流", "中通快递", "圆通速递", "韵达快递", "EMS"}
    assert all(re.search(r"[市].+[区].+号", o["address"]) for o in rows.orders)
    assert len({s["tracking_no"] for s in rows.shipments}) == len(rows.shipments)


def test_dates_are_relative_to_today_and_never_in_the_future(demo):
    rows = demo
    times = [o["created_at"] for o in rows.orders] + [e["time"] for e in rows.events] + \
        [s["delivered_at"] for s in rows.shipments if s["delivered_at"]]
    assert max(t.astimezone(SHOP_TZ).date() for t in times) < TODAY
    delivered_days = [(TODAY - s["delivered_at"].astimezone(SHOP_TZ).date()).days for s in rows.shipments
                      if s["delivered_at"]]
    assert sum(d <= 7 for d in delivered_days) >= 50 and sum(d > 15 for d in delivered_days) >= 50
    late = [s for s in rows.shipments if not s["delivered_at"] and s["promised_date"] < TODAY]
    assert len(late) >= 10 and all(s["eta"] > s["promised_date"] for s in late)  # delay apologies to give
    shifted = build_demo(7, TODAY + timedelta(days=10))
    assert shifted.orders[0]["created_at"] - rows.orders[0]["created_at"] == timedelta(days=10)


def test_refunds_invoices_promotions_and_price_drops(demo):
    rows = demo
    assert {r["method"] for r in rows.refunds} <= {"original", "balance"}
    assert {r["status"] for r in rows.refunds} >= {"processing", "completed"}
    assert all(r["expected_by"] is not None for r in rows.refunds)
    assert {i["status"] for i in rows.invoices} == {"issued", "pending"}
    assert any(i["tax_id"] for i in rows.invoices) and any(i["title"] == "个人" for i in rows.invoices)
    active = [p for p in rows.promotions if p["starts"] <= TODAY <= p["ends"]]
    assert len(active) >= 4 and len(active) < len(rows.promotions)
    drops = Counter(c["sku"] for c in rows.price_changes)
    assert sum(n > 1 for n in drops.values()) >= 5


def test_seed_into_a_database_and_read_back(db_url):  # noqa: F811
    counts = seed_demo(db_url, seed=3, today=shop_today())
    assert counts["orders"] >= 1000 and counts["customers"] >= 200
    shop = SqlShop(db_url)
    assert shop.count_orders() == counts["orders"]
    assert shop.get_order("100000000002").extra["can_return"]
    assert seed_if_empty(db_url) is None  # not empty: left alone
    again = seed_demo(db_url, seed=3, today=shop_today())  # replace, not add
    assert again == counts and shop.count_orders() == counts["orders"]


def test_open_shop_embedded_seeds_on_first_run(tmp_path):
    settings = load_settings({"db_url": f"sqlite:///{tmp_path / 'first.db'}"})
    shop = open_shop(settings)
    assert isinstance(shop, SqlShop) and shop.count_orders() >= 1000
    with session_factory(settings.database_url)() as s:
        n = s.scalar(select(func.count()).select_from(Order))
    open_shop(settings)  # second start: no reseed, no duplicates
    assert SqlShop(settings.database_url).count_orders() == n


def test_open_shop_with_oms_url_uses_http():
    settings = load_settings({"oms_url": "http://127.0.0.1:9/oms", "oms_timeout_s": 1.5})
    assert isinstance(open_shop(settings), HttpShop)


FIRST_START = """
import sys
from ivr.services.shop import seed_if_empty
print(bool(seed_if_empty(sys.argv[1])))
"""


def test_concurrent_first_starts_seed_once(db_url):  # noqa: F811
    url = db_url
    procs = [subprocess.Popen([sys.executable, "-c", FIRST_START, url], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-800:]
        results.append(out.strip())
    assert sorted(results) == ["False", "False", "True"]
    assert SqlShop(url).count_orders() == 1200
