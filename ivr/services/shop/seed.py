"""A realistic, deterministic demo shop: customers, orders in every state, shipments, returns, refunds...

Same ``seed`` and ``today`` give the same rows. Every timestamp lies before ``today`` 00:00 (shop time), so
the data never sits in the future. Well-known FIXED orders (docs/oms.md) exist in every seed.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from ivr.services.db import transaction
from ivr.services.shop.models import SHOP_TABLES, Order, Promotion
from ivr.services.shop.seed_rows import (
    CATALOG,
    DEMO_CUSTOMERS,
    FIXED_ORDERS,
    MOBILE_PREFIXES,
    SHOP_TZ,
    Builder,
    Rows,
    load_catalog,
)

__all__ = ["CATALOG", "DEMO_CUSTOMERS", "FIXED_ORDERS", "MOBILE_PREFIXES", "SHOP_TZ", "build_demo", "load_catalog",
           "seed_demo", "seed_if_empty", "shop_today"]

_PG_SEED_LOCK = 0x1F0E_5EED

STATUS_WEIGHTS = {"unpaid": 6, "paid": 12, "shipped": 8, "in_transit": 14, "delivered": 40, "returned": 6,
                  "refunded": 7, "cancelled": 7}


def shop_today() -> date:
    return datetime.now(SHOP_TZ).date()


def seed_demo(url: str, seed: int = 7, today: date | None = None, *, customers: int = 240,
              orders: int = 1200) -> dict:
    """Replace the shop's data with the demo shop (one transaction); returns row counts per table."""
    from ivr.services.migrate import ensure_schema

    ensure_schema(url)
    rows = build_demo(seed, today or shop_today(), customers, orders)
    with transaction(url) as s:
        _lock_for_seed(s)
        _replace(s, rows)
    return rows.counts()


def seed_if_empty(url: str, seed: int = 7, today: date | None = None) -> dict | None:
    """Seed the demo shop only when it has no orders (safe when several processes start at once)."""
    from ivr.services.migrate import ensure_schema

    ensure_schema(url)
    with transaction(url) as s:
        _lock_for_seed(s)
        if s.scalar(select(func.count()).select_from(Order)):
            return None
        rows = build_demo(seed, today or shop_today())
        _replace(s, rows)
    return rows.counts()


def _lock_for_seed(s: Session) -> None:
    if s.bind.dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_SEED_LOCK})
    else:  # SQLite: any write statement takes the database write lock for the rest of the transaction
        s.execute(delete(Promotion).where(Promotion.promo_id == "\x00"))


def _replace(s: Session, rows: Rows) -> None:
    for model in SHOP_TABLES:
        s.execute(delete(model))
    for model, data in rows.inserts():
        if data:
            s.execute(insert(model), data)


class _Builder(Builder):
    """The demo shop's scenarios: random orders in every state and the documented FIXED orders."""

    def random_order(self, cust: dict, status: str) -> None:
        r = self.rng
        oid = self.order_id()
        receiver = (self.name(), self.phone()) if r.random() < 0.08 else None
        items = self.pick_items()
        if status in ("unpaid", "paid"):
            created = self.ago(r.uniform(0, 3), 20)
            o = self.add_order(oid, cust, status, created, items, receiver=receiver)
            if status == "paid" and r.random() < 0.3:
                self.invoice(o, "pending")
            return
        if status == "cancelled":
            created = self.ago(r.randint(1, 40), 20)
            o = self.add_order(oid, cust, status, created, items, receiver=receiver)
            o["cancelled_at"] = created + timedelta(hours=r.uniform(0.2, 20))
            o["cancel_reason"] = r.choice(["不想要了", "拍错了", "价格买贵了", "地址填错了", "重复下单"])
            o["updated_at"] = o["cancelled_at"]
            if o["paid_at"]:
                recent = (self.anchor - o["cancelled_at"]).days < 3
                self.refund(o, "cancel", o["total_cents"], o["cancelled_at"], "processing" if recent else "completed",
                            expected_in=r.randint(1, 2) if recent else None)
            return
        if status in ("shipped", "in_transit"):
            delayed = status == "in_transit" and r.random() < 0.25
            shipped_days = r.uniform(0.2, 1.5) if status == "shipped" else r.uniform(3, 7) if delayed else r.uniform(1, 3)
            shipped = self.ago(shipped_days)
            created = shipped - timedelta(hours=r.uniform(4, 30))
            o = self.add_order(oid, cust, status, created, items, receiver=receiver)
            stage = "picked_up" if status == "shipped" else r.choice(["departed", "arrived", "out_for_delivery"])
            sh = self.ship(o, shipped, stage, promised_in=r.randint(2, 4), delayed=delayed)
            if delayed:  # promised date passed, new ETA: the bot apologises
                sh.update(promised_date=self.today - timedelta(days=r.randint(1, 3)),
                          eta=self.today + timedelta(days=r.randint(1, 3)))
            elif sh["promised_date"] < self.today:
                sh.update(promised_date=self.today + timedelta(days=r.randint(0, 1)))
                sh["eta"] = sh["promised_date"]
            o["updated_at"] = shipped
            if r.random() < 0.3:
                self.invoice(o, "issued")
            return
        # delivered, returned, refunded
        delivered_days = r.choice([r.uniform(0, 7), r.uniform(0, 60), r.uniform(5, 30)])
        transit = r.uniform(1, 5)
        delivered = self.ago(delivered_days)
        shipped = delivered - timedelta(days=transit)
        created = shipped - timedelta(hours=r.uniform(3, 30))
        o = self.add_order(oid, cust, status, created, items, receiver=receiver)
        self.ship(o, shipped, "delivered", promised_in=r.choice([2, 3, 3, 4, 5]), delivered=delivered)
        o["updated_at"] = delivered
        if r.random() < 0.45:
            self.invoice(o, "issued")
        if status == "delivered":
            if r.random() < 0.06 and delivered_days < 7:
                self.rma(o, delivered + timedelta(days=r.uniform(0.1, 0.5)), r.choice(["requested", "approved", "picked_up"]))
            return
        rma_created = delivered + timedelta(days=r.uniform(0.3, 3))
        if rma_created >= self.anchor:
            rma_created = self.anchor - timedelta(hours=2)
        if status == "returned":  # goods back at the warehouse, refund on its way
            rma_id = self.rma(o, rma_created, "received")
            self.refund(o, "return", o["total_cents"], rma_created + timedelta(days=1), "processing", rma_id,
                        expected_in=r.randint(1, 3))
        else:  # refunded: done
            rma_id = self.rma(o, rma_created, "closed")
            self.refund(o, "return", o["total_cents"], rma_created + timedelta(days=1), "completed", rma_id)

    def fixed_orders(self) -> None:
        """The well-known demo orders of docs/oms.md."""
        zw, ln = self.rows.customers[0], self.rows.customers[1]
        sku = {p["name"]: p["sku"] for p in self.products.values()}
        # 保价 product: fixed history (no random drop), paid 5 days ago at 2599, now 2399
        ac = sku["美的 1.5匹 新一级能效 变频空调挂机"]
        self.history[ac] = [(self.anchor - timedelta(days=120), 259900), (self.at(2, 9), 239900)]
        for name in ("华为 Mate 60 Pro 12GB+512GB 雅丹黑", "李宁 男款 跑步鞋 赤兔6", "九阳 破壁机 静音家用",
                     "小米14 16GB+512GB 白色", "小米 米家 扫地机器人", "兰蔻 小黑瓶 精华 50毫升"):
            self.history[sku[name]] = self.history[sku[name]][:1]  # fixed orders keep stable prices

        o = self.add_order("100000000001", zw, "in_transit", self.at(6), [(sku["华为 Mate 60 Pro 12GB+512GB 雅丹黑"], 1)],
                           paid_delay_min=3)
        self.ship(o, self.at(5), "arrived", promised_in=3, delayed=True, carrier="顺丰速运")
        self.rows.shipments[-1].update(promised_date=self.today - timedelta(days=2), eta=self.today + timedelta(days=1))

        o = self.add_order("100000000002", zw, "delivered", self.at(6), [(sku["李宁 男款 跑步鞋 赤兔6"], 1)], paid_delay_min=2)
        self.ship(o, self.at(5), "delivered", promised_in=3, delivered=self.at(3), carrier="京东物流")
        self.invoice(o, "issued", email="zhangwei@example.com", title="个人")

        o = self.add_order("100000000003", zw, "delivered", self.at(25), [(sku["九阳 破壁机 静音家用"], 1)], paid_delay_min=5)
        self.ship(o, self.at(24), "delivered", promised_in=4, delivered=self.at(20), carrier="中通快递")

        o = self.add_order("100000000004", zw, "paid", self.at(1, 21), [(sku["小米14 16GB+512GB 白色"], 1)], paid_delay_min=1)

        self.add_order("100000000005", ln, "unpaid", self.at(1, 20), [(sku["三体 全集 刘慈欣"], 1)])

        o = self.add_order("100000000006", ln, "refunded", self.at(15), [(sku["兰蔻 小黑瓶 精华 50毫升"], 1)],
                           paid_delay_min=4)
        self.ship(o, self.at(14), "delivered", promised_in=3, delivered=self.at(12), carrier="圆通速递")
        rma_id = self.rma(o, self.at(10), "closed", reason="quality:过敏 质量问题")
        self.refund(o, "return", o["total_cents"], self.at(1), "processing", rma_id, expected_in=2)

        o = self.add_order("100000000007", ln, "delivered", self.at(5), [(ac, 1)], paid_delay_min=2)
        self.ship(o, self.at(4), "delivered", promised_in=3, delivered=self.at(1), carrier="京东物流")
        self.invoice(o, "issued", email="lina@example.com", title="上海云帆贸易有限公司")

        o = self.add_order("100000000008", zw, "delivered", self.at(14), [(sku["小米 米家 扫地机器人"], 1)], paid_delay_min=2)
        self.ship(o, self.at(13), "delivered", promised_in=3, delivered=self.at(10), carrier="韵达快递")

        o = self.add_order("100000000009", ln, "cancelled", self.at(8, 10), [(sku["回力 帆布鞋 经典款"], 2)], paid_delay_min=2)
        o.update(cancelled_at=self.at(8, 12), cancel_reason="拍错了", updated_at=self.at(8, 12))
        self.refund(o, "cancel", o["total_cents"], self.at(8, 12), "completed")

        o = self.add_order("100000000010", ln, "delivered", self.at(4), [(sku["阳澄湖 大闸蟹 礼盒 8只装"], 1)], paid_delay_min=2)
        self.ship(o, self.at(3, 9), "delivered", promised_in=2, delivered=self.at(2), carrier="顺丰速运")

        o = self.add_order("100000000011", ln, "in_transit", self.at(2, 10), [(sku["飞利浦 电动牙刷 钻石系列"], 1)],
                           paid_delay_min=2)
        self.ship(o, self.at(1), "departed", promised_in=3, carrier="EMS")
        self.rows.shipments[-1].update(promised_date=self.today + timedelta(days=2), eta=self.today + timedelta(days=2))


def build_demo(seed: int, today: date, n_customers: int = 240, n_orders: int = 1200) -> Rows:
    """All rows of the demo shop, in memory (deterministic for seed and today)."""
    b = _Builder(seed, today)
    b.catalogue()
    b.promotions()
    custs = b.customers(max(n_customers, len(DEMO_CUSTOMERS) + 1))
    b.fixed_orders()
    statuses = list(STATUS_WEIGHTS)
    weights = list(STATUS_WEIGHTS.values())
    for i in range(max(0, n_orders - len(FIXED_ORDERS))):
        # every status appears, then weighted; a quarter of the orders go to 30 loyal buyers
        status = statuses[i] if i < len(statuses) else b.rng.choices(statuses, weights)[0]
        pool = len(custs) - 2
        cust = custs[2 + (b.rng.randrange(pool) if b.rng.random() < 0.75 else b.rng.randrange(min(30, pool)))]
        b.random_order(cust, status)
    b.finish_catalogue()
    b.rows.orders.sort(key=lambda o: o["created_at"])
    return b.rows
