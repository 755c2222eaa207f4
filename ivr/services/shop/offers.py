"""Personal offers from purchase history: what the shop may offer a verified customer after a served need, and the
writes when the customer accepts.

    offers = offers_for(shop)                       # SqlOffers over the embedded shop, or None (no offers)
    offer = offers.offer_for(order, asked=["吸尘器有货吗"])
    offers.accept(offer, order, idempotency_key="call-1:offer")   # coupon issued / restock subscription

At most one offer, the first that applies, in this order:

1. ``restock``: a product the customer asked about (its name or an alias in what they said) is out of stock and
   they are not subscribed yet -> a notice when it is back;
2. ``accessory``: the order holds a product with an accessory rule and not the accessory -> a coupon for it;
3. ``coupon``: the order's category has a coupon template -> that coupon.

A coupon the customer already holds (one per customer and template) or a product they already wait for is never
offered again. Orders that were cancelled, refunded or returned get no offer. The offers, coupon templates and the
demo shop's stock are data (``offer_catalog.yaml``); the ``product_stock`` table is filled from it when empty.
Accepting is one transaction under an idempotency key (``idempotency.run_once``): the same key twice issues one
coupon; a second coupon of a template for one customer is refused by a unique constraint and answered with the
first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import yaml
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ivr.services.db import transaction
from ivr.services.shop import rules
from ivr.services.shop.api import NotAllowed, OrderSnapshot
from ivr.services.shop.idempotency import run_once
from ivr.services.shop.models import Product
from ivr.services.shop.offer_models import Coupon, ProductStock, RestockSubscription
from ivr.services.shop.seed_rows import SHOP_TZ
from ivr.services.shop.store import new_id

CATALOG = Path(__file__).with_name("offer_catalog.yaml")
NO_OFFER_STATUSES = ("cancelled", "refunded", "returned")
OfferKind = Literal["accessory", "coupon", "restock"]


@dataclass(frozen=True, slots=True)
class Offer:
    """One offer as the dialogue speaks it: ``product`` is what it is about (bought, or asked about), ``item`` the
    accessory (accessory offers), ``coupon`` the template id and ``sku`` the product written to."""

    kind: OfferKind
    product: str
    item: str = ""
    coupon: str = ""
    title: str = ""
    amount_cents: int = 0
    min_spend_cents: int = 0
    valid_days: int = 0
    sku: str = ""
    restock_on: date | None = None


@dataclass(frozen=True, slots=True)
class OfferResult:
    """What accepting wrote: the coupon (id, expiry) or the restock subscription (id)."""

    kind: OfferKind
    ref: str
    expires_on: date | None = None


@runtime_checkable
class OfferService(Protocol):
    """What the dialogue needs for offers (an HTTP OMS may implement it too)."""

    def offer_for(self, order: OrderSnapshot, asked: list[str]) -> Offer | None: ...

    def accept(self, offer: Offer, order: OrderSnapshot, idempotency_key: str) -> OfferResult: ...


@cache
def load_catalog(path: Path = CATALOG) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _compact(s: str) -> str:
    return "".join(str(s).split()).lower()


_filled: set[str] = set()
_fill_lock = threading.Lock()


class SqlOffers:
    """Offers over the embedded shop's database (the tables of ``offer_models``)."""

    def __init__(self, url: str, *, catalog: dict[str, Any] | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.url = url
        self.cat = catalog if catalog is not None else load_catalog()
        self._clock = clock or rules.utc_now

    # --- reads -----------------------------------------------------------------------------------------
    def offer_for(self, order: OrderSnapshot, asked: list[str]) -> Offer | None:
        """The one offer for the customer of ``order`` (see the module docstring), or None."""
        if order.status in NO_OFFER_STATUSES or not order.customer_id:
            return None
        self.ensure_stock()
        with transaction(self.url) as s:
            held = set(s.scalars(select(Coupon.template).where(Coupon.customer_id == order.customer_id)))
            waiting = set(s.scalars(select(RestockSubscription.sku)
                                    .where(RestockSubscription.customer_id == order.customer_id)))
            return (self._restock(s, asked, waiting) or self._accessory(s, order, held)
                    or self._category(order, held))

    def _restock(self, s: Session, asked: list[str], waiting: set[str]) -> Offer | None:
        said = _compact(" ".join(asked))
        if not said:
            return None
        for entry in self.cat.get("stock") or []:
            names = [entry["product"], entry.get("label", ""), *(entry.get("aliases") or [])]
            if not any(n and _compact(n) in said for n in names):
                continue
            row = s.execute(select(ProductStock.sku, ProductStock.available, ProductStock.restock_on)
                            .join(Product, Product.sku == ProductStock.sku)
                            .where(Product.name == entry["product"])).first()
            if row is not None and row.available <= 0 and row.sku not in waiting:
                return Offer("restock", entry.get("label") or entry["product"], sku=row.sku,
                             restock_on=row.restock_on)
        return None

    def _accessory(self, s: Session, order: OrderSnapshot, held: set[str]) -> Offer | None:
        bought = {_compact(i.name) for i in order.items}
        for rule in self.cat.get("accessories") or []:
            if rule["coupon"] in held or _compact(rule["accessory"]) in bought:
                continue
            if any(_compact(p) in name for p in rule["for"] for name in bought):
                sku = s.scalar(select(Product.sku).where(Product.name == rule["accessory"])) or ""
                return self._coupon_offer("accessory", rule.get("label", ""), rule["coupon"],
                                          item=rule.get("accessory_label") or rule["accessory"], sku=sku)
        return None

    def _category(self, order: OrderSnapshot, held: set[str]) -> Offer | None:
        by_cat = self.cat.get("category_coupons") or {}
        labels = self.cat.get("category_labels") or {}
        for item in order.items:
            template = by_cat.get(item.category)
            if template and template not in held:
                return self._coupon_offer("coupon", labels.get(item.category, item.category), template)
        return None

    def _coupon_offer(self, kind: OfferKind, product: str, template: str, *, item: str = "",
                      sku: str = "") -> Offer:
        t = self.cat["coupons"][template]
        return Offer(kind, product, item=item, coupon=template, title=str(t["title"]),
                     amount_cents=int(round(float(t["amount"]) * 100)),
                     min_spend_cents=int(round(float(t.get("min_spend", 0)) * 100)),
                     valid_days=int(t.get("valid_days", 30)), sku=sku)

    def coupons(self, customer_id: str) -> list[dict[str, Any]]:
        """The customer's coupons (newest first)."""
        with transaction(self.url) as s:
            rows = s.scalars(select(Coupon).where(Coupon.customer_id == customer_id)
                             .order_by(Coupon.issued_at.desc())).all()
            return [{"coupon_id": c.coupon_id, "template": c.template, "title": c.title,
                     "amount_cents": c.amount_cents, "order_id": c.order_id, "expires_on": c.expires_on.isoformat()}
                    for c in rows]

    def subscriptions(self, customer_id: str) -> list[str]:
        """Skus the customer waits for."""
        with transaction(self.url) as s:
            return sorted(s.scalars(select(RestockSubscription.sku)
                                    .where(RestockSubscription.customer_id == customer_id)))

    # --- writes ----------------------------------------------------------------------------------------
    def accept(self, offer: Offer, order: OrderSnapshot, idempotency_key: str) -> OfferResult:
        """Write what the customer accepted, once per ``idempotency_key`` (one transaction)."""
        if offer.kind == "restock":
            return self._subscribe(offer, order, idempotency_key)
        if offer.coupon not in (self.cat.get("coupons") or {}):
            raise NotAllowed("invalid_request", f"no coupon template {offer.coupon!r}")
        t = self.cat["coupons"][offer.coupon]
        customer = order.customer_id

        def work(s: Session, now: datetime) -> str:
            existing = s.scalar(select(Coupon.coupon_id).where(Coupon.customer_id == customer,
                                                               Coupon.template == offer.coupon))
            if existing:
                return existing
            coupon_id = new_id("6")
            s.add(Coupon(coupon_id=coupon_id, customer_id=customer, template=offer.coupon, title=str(t["title"]),
                         amount_cents=offer.amount_cents, min_spend_cents=offer.min_spend_cents,
                         category=str(t.get("category", "")), sku=offer.sku, order_id=order.order_id,
                         issued_at=now, expires_on=now.astimezone(SHOP_TZ).date() + timedelta(days=offer.valid_days)))
            s.flush()
            return coupon_id

        request = {"kind": offer.kind, "customer": customer, "coupon": offer.coupon, "order": order.order_id}
        return run_once(self.url, self._clock, "issue_coupon", idempotency_key, request, work, self._load_coupon)

    def _subscribe(self, offer: Offer, order: OrderSnapshot, key: str) -> OfferResult:
        customer = order.customer_id

        def work(s: Session, now: datetime) -> str:
            existing = s.scalar(select(RestockSubscription.id).where(RestockSubscription.customer_id == customer,
                                                                     RestockSubscription.sku == offer.sku))
            if existing is not None:
                return str(existing)
            row = RestockSubscription(customer_id=customer, sku=offer.sku, phone=order.phone, created_at=now)
            s.add(row)
            s.flush()
            return str(row.id)

        request = {"kind": "restock", "customer": customer, "sku": offer.sku}
        return run_once(self.url, self._clock, "subscribe_restock", key, request, work,
                        lambda ref: OfferResult("restock", ref))

    def _load_coupon(self, ref: str) -> OfferResult:
        with transaction(self.url) as s:
            c = s.get(Coupon, ref)
            if c is None:  # pragma: no cover - the key and the coupon are written in one transaction
                raise NotAllowed("invalid_request", f"no coupon {ref}")
            return OfferResult("accessory" if c.sku else "coupon", c.coupon_id, c.expires_on)

    def ensure_stock(self, today: date | None = None) -> int:
        """Fill ``product_stock`` from the catalogue's ``stock`` when the table is empty (the demo shop's stock);
        how many rows were written (0 when it already had rows or the products are missing)."""
        if self.url in _filled:
            return 0
        try:
            with _fill_lock, transaction(self.url) as s:
                if s.scalar(select(func.count()).select_from(ProductStock)):
                    _filled.add(self.url)
                    return 0
                day = today or self._clock().astimezone(SHOP_TZ).date()
                rows = []
                for entry in self.cat.get("stock") or []:
                    sku = s.scalar(select(Product.sku).where(Product.name == entry["product"]))
                    if sku:
                        rows.append({"sku": sku, "available": 0, "updated_at": self._clock(),
                                     "restock_on": day + timedelta(days=int(entry.get("restock_in_days", 7)))})
                if rows:
                    s.execute(insert(ProductStock), rows)
        except IntegrityError:  # another process filled it at the same moment
            _filled.add(self.url)
            return 0
        if rows:
            _filled.add(self.url)
        return len(rows)


def offers_for(shop: object) -> OfferService | None:
    """The offers of ``shop``: its own when it implements :class:`OfferService`, :class:`SqlOffers` over an embedded
    SQL shop (one with a database ``url``), else None (no offers)."""
    if isinstance(shop, OfferService):
        return shop
    url = getattr(shop, "url", None)
    if isinstance(url, str) and url.startswith(("sqlite", "postgresql")):
        return SqlOffers(url)
    return None
