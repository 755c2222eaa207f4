"""Building blocks of the demo shop (``seed``): the well-known customers and orders, the catalogue, and
``Builder``, which writes consistent rows (orders, items, payments, shipments, returns, refunds, invoices)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from ivr.services.shop.models import (
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
class Rows:
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


class Builder:
    """Row-writing primitives of the demo shop (the scenarios are in ``seed._Builder``)."""

    def __init__(self, seed: int, today: date) -> None:
        self.rng = random.Random(seed)
        self.cat = load_catalog()
        self.today = today
        self.anchor = datetime.combine(today, time(0, 0), SHOP_TZ).astimezone(UTC)  # nothing at/after this
        self.rows = Rows()
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
