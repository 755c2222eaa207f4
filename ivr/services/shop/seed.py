"""A realistic, deterministic demo shop: customers, orders in every state, shipments, returns, refunds...

Same ``seed`` and ``today`` give the same rows. Every timestamp lies before ``today`` 00:00 (shop time), so
the data never sits in the future. Well-known FIXED orders (docs/oms.md) exist in every seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from ivr.services.db import transaction
from ivr.services.shop.models import (
    SHOP_TABLES,
    Customer,
    InvoiceRow,
    Order,
    OrderItemRow,
    Payment,
    PriceChange,
    Product,
    Promotion,
    RefundRow,
    ReturnRow,
    ShipmentRow,
    TrackingEventRow,
)

CATALOG = Path(__file__).with_name("demo_catalog.yaml")
SHOP_TZ = ZoneInfo("Asia/Shanghai")
_PG_SEED_LOCK = 0x1F0E_5EED

STATUS_WEIGHTS = {"unpaid": 6, "paid": 12, "shipped": 8, "in_transit": 14, "delivered": 40, "returned": 6,
                  "refunded": 7, "cancelled": 7}
MOBILE_PREFIXES = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155",
                   "156", "157", "158", "159", "166", "176", "177", "180", "181", "182", "186", "187", "188",
                   "189", "198", "199"]

# Well-known demo data (documented in docs/oms.md): same in every seed.
DEMO_CUSTOMERS = {
    "C0000001": ("张伟", "13800138000", "北京市朝阳区建国路88号阳光花园3栋2单元501室", True),
    "C0000002": ("李娜", "13912345678", "上海市浦东新区世纪大道100号锦绣家园8栋1单元1202室", False),
}
FIXED_ORDERS = {
    "100000000001": "in_transit, 2 days late (promised 2 days ago), delay event: delay apology",
    "100000000002": "delivered 3 days ago: returnable (七天无理由)",
    "100000000003": "delivered 20 days ago: not returnable (return_window_closed)",
    "100000000004": "paid, not shipped: cancellable, address/slot changeable",
    "100000000005": "unpaid: cancellable",
    "100000000006": "refunded after a return; refund processing, expected in 2 days",
    "100000000007": "delivered 1 day ago, price dropped 200 yuan since payment: 保价; invoice issued",
    "100000000008": "delivered 10 days ago: only a quality return/exchange is possible (15 days)",
    "100000000009": "cancelled after payment; refund completed",
    "100000000010": "food delivered 2 days ago: no 七天无理由 (category_not_returnable), quality return ok",
    "100000000011": "in_transit, on time (promised in 2 days)",
}


@lru_cache(maxsize=1)
def load_catalog() -> dict:
    return yaml.safe_load(CATALOG.read_text(encoding="utf-8"))


@dataclass
class _Rows:
    customers: list[dict] = field(default_factory=list)
    products: list[dict] = field(default_factory=list)
    price_changes: list[dict] = field(default_factory=list)
    promotions: list[dict] = field(default_factory=list)
    orders: list[dict] = field(default_factory=list)
    items: list[dict] = field(default_factory=list)
    payments: list[dict] = field(default_factory=list)
    shipments: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    returns: list[dict] = field(default_factory=list)
    refunds: list[dict] = field(default_factory=list)
    invoices: list[dict] = field(default_factory=list)

    def inserts(self):
        return [(Customer, self.customers), (Product, self.products), (PriceChange, self.price_changes),
                (Promotion, self.promotions), (Order, self.orders), (OrderItemRow, self.items),
                (Payment, self.payments), (ShipmentRow, self.shipments), (TrackingEventRow, self.events),
                (ReturnRow, self.returns), (RefundRow, self.refunds), (InvoiceRow, self.invoices)]

    def counts(self) -> dict:
        return {m.__tablename__: len(rows) for m, rows in self.inserts()}


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


def _replace(s: Session, rows: _Rows) -> None:
    for model in SHOP_TABLES:
        s.execute(delete(model))
    for model, data in rows.inserts():
        if data:
            s.execute(insert(model), data)


class _Builder:
    def __init__(self, seed: int, today: date) -> None:
        self.rng = random.Random(seed)
        self.cat = load_catalog()
        self.today = today
        self.anchor = datetime.combine(today, time(0, 0), SHOP_TZ).astimezone(UTC)  # nothing at/after this
        self.rows = _Rows()
        self.used_ids: set[str] = set(FIXED_ORDERS)
        self.used_phones: set[str] = {c[1] for c in DEMO_CUSTOMERS.values()}
        self.used_tracking: set[str] = set()
        self.products: dict[str, dict] = {}
        self.by_category: dict[str, list[str]] = {}
        self.history: dict[str, list[tuple[datetime, int]]] = {}

    # ---- helpers
    def ago(self, days: float, jitter_h: float = 0) -> datetime:
        """A time `days` before today's midnight (minus up to `jitter_h` hours); always in the past."""
        h = self.rng.uniform(0, jitter_h) if jitter_h else 0
        return self.anchor - timedelta(days=days, hours=h, minutes=self.rng.randint(1, 59))

    def at(self, days_ago: int, hour: int = 14) -> datetime:
        """`hour` o'clock (shop time) on the calendar day `days_ago` days before today (days_ago >= 1)."""
        return datetime.combine(self.today - timedelta(days=days_ago), time(hour, 0), SHOP_TZ).astimezone(UTC)

    def local(self, t: datetime) -> date:
        return t.astimezone(SHOP_TZ).date()

    def digits(self, first: str, n: int) -> str:
        return first + "".join(self.rng.choice("0123456789") for _ in range(n - len(first)))

    def order_id(self) -> str:
        while True:
            oid = self.digits(self.rng.choice("23456789"), 12)
            if oid not in self.used_ids:
                self.used_ids.add(oid)
                return oid

    def phone(self) -> str:
        while True:
            p = self.rng.choice(MOBILE_PREFIXES) + self.digits("", 8)
            if p not in self.used_phones:
                self.used_phones.add(p)
                return p

    def name(self) -> str:
        return self.rng.choice(self.cat["surnames"]) + self.rng.choice(self.cat["given_names"])

    def address(self, city: str | None = None) -> tuple[str, str]:
        city = city or self.rng.choice(list(self.cat["cities"]))
        c = self.cat["cities"][city]
        r = self.rng
        addr = (f"{city}{r.choice(c['districts'])}{r.choice(c['streets'])}{r.randint(1, 399)}号"
                f"{r.choice(self.cat['residences'])}{r.randint(1, 30)}栋{r.randint(1, 6)}单元{r.randint(1, 32)}0{r.randint(1, 4)}室")
        return city, addr

    def price_at(self, sku: str, t: datetime) -> int:
        price = self.history[sku][0][1]
        for when, p in self.history[sku]:
            if when <= t:
                price = p
        return price

    # ---- catalogue, promotions, customers
    def catalogue(self) -> None:
        for cat_name, cat in self.cat["categories"].items():
            prefix = cat_name[:2].upper()
            for i, (name, yuan) in enumerate(cat["products"], 1):
                sku = f"{prefix}{i:04d}"
                base = int(round(float(yuan) * 100))
                start = self.anchor - timedelta(days=120)
                hist = [(start, base)]
                if cat["price_protect_days"] and self.rng.random() < 0.35:  # a recent price drop (保价)
                    hist.append((self.ago(self.rng.randint(1, 12), 20), int(base * self.rng.uniform(0.85, 0.96)) // 100 * 100))
                self.history[sku] = hist
                self.products[sku] = {"sku": sku, "name": name, "category": cat_name, "price_cents": hist[-1][1],
                                      "seven_day_return": bool(cat["seven_day_return"]),
                                      "price_protect_days": int(cat["price_protect_days"]), "description": ""}
                self.by_category.setdefault(cat_name, []).append(sku)

    def finish_catalogue(self) -> None:
        for sku, hist in self.history.items():
            self.products[sku]["price_cents"] = hist[-1][1]
            for when, price in hist:
                self.rows.price_changes.append({"sku": sku, "price_cents": price, "changed_at": when})
        self.rows.products = list(self.products.values())

    def promotions(self) -> None:
        for i, p in enumerate(self.cat["promotions"], 1):
            self.rows.promotions.append({"promo_id": f"PR{i:03d}", "title": p["title"], "detail": p["detail"],
                                         "category": p["category"], "starts": self.today + timedelta(days=p["starts"]),
                                         "ends": self.today + timedelta(days=p["ends"])})

    def customers(self, n: int) -> list[dict]:
        out = []
        for cid, (name, phone, addr, vip) in DEMO_CUSTOMERS.items():
            out.append({"customer_id": cid, "name": name, "phone": phone, "city": addr[:3], "address": addr,
                        "vip": vip, "created_at": self.anchor - timedelta(days=400)})
        for i in range(len(out) + 1, n + 1):
            city, addr = self.address()
            out.append({"customer_id": f"C{i:07d}", "name": self.name(), "phone": self.phone(), "city": city,
                        "address": addr, "vip": self.rng.random() < 0.15,
                        "created_at": self.ago(self.rng.randint(30, 900), 23)})
        self.rows.customers = out
        return out

    # ---- orders
    def pick_items(self) -> list[tuple[str, int]]:
        cats = list(self.by_category)
        n = self.rng.choices([1, 2, 3], [70, 22, 8])[0]
        chosen: dict[str, int] = {}
        for _ in range(n):
            sku = self.rng.choice(self.by_category[self.rng.choice(cats)])
            qty = self.rng.choices([1, 2, 3], [80, 15, 5])[0]
            chosen[sku] = chosen.get(sku, 0) + qty
        return list(chosen.items())

    def add_order(self, oid: str, cust: dict, status: str, created: datetime, items: list[tuple[str, int]], *,
                  receiver: tuple[str, str] | None = None, paid_delay_min: int | None = None) -> dict:
        r = self.rng
        name, phone = receiver or (cust["name"], cust["phone"])
        total = 0
        for sku, qty in items:
            p = self.products[sku]
            unit = self.price_at(sku, created)
            total += unit * qty
            self.rows.items.append({"order_id": oid, "sku": sku, "name": p["name"], "category": p["category"],
                                    "quantity": qty, "unit_price_cents": unit, "protected_cents": 0})
        paid_at = None
        if status != "unpaid" and not (status == "cancelled" and r.random() < 0.4 and paid_delay_min is None):
            paid_at = created + timedelta(minutes=paid_delay_min if paid_delay_min is not None else r.randint(1, 30))
            self.rows.payments.append({"payment_id": self.digits("4", 14), "order_id": oid,
                                       "method": r.choice(self.cat["payment_methods"]), "amount_cents": total,
                                       "paid_at": paid_at})
        row = {"order_id": oid, "customer_id": cust["customer_id"], "status": status, "receiver_name": name,
               "phone": phone, "address": cust["address"], "delivery_slot": r.choice(self.cat["delivery_slots"]),
               "total_cents": total, "created_at": created, "paid_at": paid_at, "cancelled_at": None,
               "cancel_reason": "", "updated_at": paid_at or created}
        self.rows.orders.append(row)
        return row

    def ship(self, order: dict, shipped: datetime, stage: str, *, promised_in: int, delivered: datetime | None = None,
             delayed: bool = False, carrier: str | None = None) -> dict:
        """Shipment and tracking events up to `stage` (picked_up | departed | arrived | out_for_delivery | delivered)."""
        r = self.rng
        carrier = carrier or r.choice(list(self.cat["carriers"]))
        c = self.cat["carriers"][carrier]
        while True:
            tn = c["prefix"] + self.digits("", c["digits"])
            if tn not in self.used_tracking:
                self.used_tracking.add(tn)
                break
        origin = r.choice(self.cat["warehouses"])
        dest = order["address"][:3]
        district = order["address"][3:order["address"].index("区") + 1] if "区" in order["address"][3:12] else ""
        promised = self.local(shipped) + timedelta(days=promised_in)
        hub = c["hub_suffix"]
        tpl = self.cat["tracking"]
        end = delivered or self.anchor - timedelta(minutes=5)
        steps = ["picked_up", "departed", "arrived", "out_for_delivery", "delivered"]
        upto = steps.index(stage)
        span = max((end - shipped).total_seconds(), 3600.0)
        times = sorted(shipped + timedelta(seconds=span * f) for f in
                       [0.0] + sorted(r.uniform(0.1, 0.9) for _ in range(upto - 1)) + ([1.0] if upto else []))
        fmt = {"origin": origin, "dest": dest, "hub": hub, "district": district, "courier": r.choice(self.cat["couriers"]),
               "signer": r.choice(["本人", "家人", "快递柜", "门卫"]), "carrier": carrier, "hub_city": dest}
        for step, t in zip(steps[: upto + 1], times, strict=False):
            self.rows.events.append({"order_id": order["order_id"], "time": t, "location": dest if step != "picked_up" else origin,
                                     "description": tpl[step].format(**fmt)})
        if delayed:
            self.rows.events.append({"order_id": order["order_id"], "time": end - timedelta(hours=r.randint(2, 20)),
                                     "location": dest, "description": tpl["delayed"].format(**fmt)})
        eta = None
        if delivered is None:
            eta = max(promised, self.today + timedelta(days=r.randint(1, 3))) if delayed else promised
        ship = {"order_id": order["order_id"], "carrier": carrier, "tracking_no": tn, "shipped_at": shipped,
                "promised_date": promised, "eta": eta, "delivered_at": delivered}
        self.rows.shipments.append(ship)
        return ship

    def refund(self, order: dict, kind: str, amount: int, created: datetime, status: str, rma_id: str | None = None,
               expected_in: int | None = None) -> None:
        expected = (self.today + timedelta(days=expected_in) if expected_in is not None
                    else self.local(created) + timedelta(days=3))
        self.rows.refunds.append({"refund_id": self.digits("6", 12), "order_id": order["order_id"], "rma_id": rma_id,
                                  "kind": kind, "amount_cents": amount, "method": "original", "status": status,
                                  "created_at": created, "expected_by": expected})

    def rma(self, order: dict, created: datetime, status: str, reason: str | None = None, kind: str = "return") -> str:
        rma_id = self.digits("8", 12)
        reason = reason or self.rng.choice(self.cat["return_reasons"])
        is_open = status in ("requested", "approved", "picked_up")
        self.rows.returns.append({"rma_id": rma_id, "order_id": order["order_id"],
                                  "open_order_id": order["order_id"] if is_open else None, "kind": kind,
                                  "reason": reason, "reason_code": reason.split(":")[0], "status": status,
                                  "pickup_slot": self.rng.choice(self.cat["pickup_slots"]), "created_at": created})
        return rma_id

    def invoice(self, order: dict, status: str, email: str | None = None, title: str | None = None) -> None:
        title = title or self.rng.choice(self.cat["invoice_titles"])
        tax = "" if title == "个人" else "91" + self.digits(self.rng.choice("13456"), 15) + self.rng.choice("0123456789X")
        self.rows.invoices.append({"invoice_id": self.digits("9", 12), "order_id": order["order_id"], "title": title,
                                   "tax_id": tax, "email": email or f"{order['customer_id'].lower()}@example.com",
                                   "status": status, "sent_count": 1 if status == "issued" else 0,
                                   "updated_at": order["updated_at"]})

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


def build_demo(seed: int, today: date, n_customers: int = 240, n_orders: int = 1200) -> _Rows:
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
