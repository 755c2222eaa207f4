"""HttpShop against a real HTTP server: the reference OMS app (FastAPI, uvicorn on a free port) serving the
embedded store over the REST shape of docs/oms.md. Real round trips, real error mapping, real timeouts."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from test_shop_helpers import free_port, shop_today

from ivr.services.shop import NotAllowed, NotFound, OmsUnavailable, ShopService, SqlShop, seed_demo
from ivr.services.shop.http_oms import HttpShop
from ivr.services.shop.oms_server import create_oms_app
from ivr.services.shop.seed import FIXED_ORDERS

TOKEN = "s3cret-token"


@contextmanager
def serve(app: FastAPI):
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def oms(tmp_path):
    url = f"sqlite:///{tmp_path / 'oms.db'}"
    seed_demo(url, today=shop_today(), customers=20, orders=60)
    store = SqlShop(url)
    with serve(create_oms_app(store, token=TOKEN)) as base:
        client = HttpShop(base, token=TOKEN, timeout_s=5)
        yield store, client
        client.close()


def test_reads_round_trip_unchanged(oms):
    store, http = oms
    assert isinstance(http, ShopService)
    for oid in FIXED_ORDERS:
        assert http.get_order(oid) == store.get_order(oid)
    assert http.get_order("999999999999") is None
    assert http.orders_for_phone("13800138000", limit=3) == store.orders_for_phone("13800138000", limit=3)
    assert http.current_promotions() == store.current_promotions()
    late = http.get_order("100000000001")
    assert late.shipment.latest is not None and late.extra["days_late"] == 2


def test_writes_are_idempotent_over_http(oms):
    store, http = oms
    rma = http.create_return("100000000002", "return", "size:尺码不合适", "明天上午", "h-1")
    assert http.create_return("100000000002", "return", "size:尺码不合适", "明天上午", "h-1") == rma
    assert [r.rma_id for r in store.get_order("100000000002").returns] == [rma.rma_id]
    with pytest.raises(NotAllowed) as e:
        http.create_return("100000000002", "return", "size", "明天上午", "h-2")
    assert e.value.code == "return_exists"
    with pytest.raises(NotAllowed) as e:
        http.create_return("100000000003", "return", "no_reason", "", "h-3")
    assert e.value.code == "return_window_closed"
    with pytest.raises(NotFound):
        http.cancel_order("123456789012", "", "h-4")
    assert http.change_address("100000000004", "上海市徐汇区漕溪北路88号世纪花园2栋", "h-5").address.startswith("上海市")
    assert http.change_delivery_slot("100000000004", "周末送货", "h-6").delivery_slot == "周末送货"
    assert http.cancel_order("100000000004", "不想要了", "h-7").status == "cancelled"
    assert http.request_price_protection("100000000007", "h-8").amount_cents == 20000
    assert http.request_price_protection("100000000007", "h-9") is None
    assert http.resend_invoice("100000000007", None, "h-10").status == "issued"
    assert http.change_invoice_title("100000000002", "个人", "", "h-11").status == "pending"
    t = http.create_ticket("callback", "请回电", "13912345678", None, {"reason": "refund"}, "h-12")
    assert t.kind == "callback" and len(t.ticket_id) == 12
    assert [a["idempotency_key"] for a in store.audit_entries(limit=20)].count("h-1") == 1


def test_bad_requests_and_bad_credentials(oms):
    store, http = oms
    with pytest.raises(NotAllowed) as e:
        http.create_return("100000000002", "refund", "x", "", "h-20")  # not a kind the shape allows
    assert e.value.code == "invalid_request"
    base = str(http._client.base_url)
    with pytest.raises(OmsUnavailable):
        HttpShop(base, token="wrong").get_order("100000000002")
    with pytest.raises(NotAllowed):
        http.cancel_order("100000000004", "", "")  # no idempotency key


def test_unreachable_slow_and_broken_servers_are_unavailable():
    with pytest.raises(OmsUnavailable):
        HttpShop(f"http://127.0.0.1:{free_port()}", timeout_s=1, retries=0).get_order("100000000002")
    app = FastAPI()

    @app.get("/orders/{oid}")
    async def slow(oid: str):
        import asyncio

        await asyncio.sleep(3)
        return {}

    @app.get("/orders")
    def broken(phone: str):
        return JSONResponse({"error": "boom"}, 500)

    @app.get("/promotions")
    def garbage():
        return {"promotions": "not a list"}

    @app.post("/orders/{oid}/cancel")
    def wrong_shape(oid: str):
        return {"order_id": oid}  # 200 but not an OrderSnapshot

    with serve(app) as base:
        shop = HttpShop(base, timeout_s=0.5, retries=0)
        with pytest.raises(OmsUnavailable):
            shop.get_order("100000000002")
        with pytest.raises(OmsUnavailable):
            shop.orders_for_phone("13800138000")
        with pytest.raises(OmsUnavailable):
            shop.current_promotions()
        with pytest.raises(OmsUnavailable):
            shop.cancel_order("100000000004", "", "k")
