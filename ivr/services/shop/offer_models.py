"""Tables of the shop's personal offers (``ivr.services.shop.offers``): stock of the products it tracks, coupons
issued to customers, restock-notice subscriptions. In the shop's database, next to its tables; no foreign keys to
them (the demo seed replaces products, customers and orders without touching these).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ivr.services.db import Base
from ivr.services.shop.models import UtcDateTime


class ProductStock(Base):
    """Stock of a product the shop tracks; a product without a row is in stock (not tracked)."""

    __tablename__ = "product_stock"

    sku: Mapped[str] = mapped_column(String(32), primary_key=True)
    available: Mapped[int] = mapped_column(Integer, default=0)
    restock_on: Mapped[date | None] = mapped_column(Date, nullable=True)  # expected arrival (shop date)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Coupon(Base):
    """A coupon issued to a customer: one per customer and coupon template (the unique constraint)."""

    __tablename__ = "coupons"
    __table_args__ = (UniqueConstraint("customer_id", "template", name="uq_coupons_customer_template"),)

    coupon_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(16), index=True)
    template: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(64))
    amount_cents: Mapped[int] = mapped_column(Integer)
    min_spend_cents: Mapped[int] = mapped_column(Integer, default=0)
    category: Mapped[str] = mapped_column(String(32), default="")
    sku: Mapped[str] = mapped_column(String(32), default="")  # an accessory coupon: the accessory's sku
    order_id: Mapped[str] = mapped_column(String(24), default="")  # the purchase it was offered for
    status: Mapped[str] = mapped_column(String(16), default="issued")  # issued | used | expired
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_on: Mapped[date] = mapped_column(Date)


class RestockSubscription(Base):
    """A customer asked to be told when a product is back in stock (one per customer and product)."""

    __tablename__ = "restock_subscriptions"
    __table_args__ = (UniqueConstraint("customer_id", "sku", name="uq_restock_subscriptions_customer_sku"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(16), index=True)
    sku: Mapped[str] = mapped_column(String(32), index=True)
    phone: Mapped[str] = mapped_column(String(20), default="")  # the verified order's phone: where the notice goes
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


OFFER_TABLES = [RestockSubscription, Coupon, ProductStock]
