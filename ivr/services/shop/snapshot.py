"""Rows of the SQL shop as the domain types of ``ivr.services.shop.api`` (``OrderSnapshot`` with derived facts)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.services.shop import rules
from ivr.services.shop.api import (
    Invoice,
    OrderItem,
    OrderSnapshot,
    Refund,
    ReturnRequest,
    Shipment,
    TrackingEvent,
)
from ivr.services.shop.models import InvoiceRow, Order, Payment, Product, RefundRow, ReturnRow, ShipmentRow
from ivr.services.shop.rules import ShopPolicy


def order_snapshot(s: Session, o: Order, policy: ShopPolicy, today: date) -> OrderSnapshot:
    """The order as the dialogue sees it (``OrderSnapshot``), with derived facts; ``today`` in the shop's calendar."""
    ship = s.get(ShipmentRow, o.order_id)
    refunds = s.scalars(select(RefundRow).where(RefundRow.order_id == o.order_id)
                        .order_by(RefundRow.created_at)).all()
    returns = s.scalars(select(ReturnRow).where(ReturnRow.order_id == o.order_id)
                        .order_by(ReturnRow.created_at)).all()
    inv = s.scalar(select(InvoiceRow).where(InvoiceRow.order_id == o.order_id))
    pay = s.scalar(select(Payment.method).where(Payment.order_id == o.order_id).limit(1))
    products = {p.sku: p for p in s.scalars(select(Product).where(Product.sku.in_({i.sku for i in o.items})))}
    shipment = None
    if ship is not None:
        shipment = Shipment(carrier=ship.carrier, tracking_no=ship.tracking_no, shipped_at=ship.shipped_at,
                            promised_date=ship.promised_date, eta=ship.eta, delivered_at=ship.delivered_at,
                            events=tuple(TrackingEvent(time=e.time, location=e.location,
                                                       description=e.description) for e in ship.events))
    return OrderSnapshot(
        order_id=o.order_id, customer_id=o.customer_id, customer_name=o.receiver_name, phone=o.phone,
        status=o.status, created_at=o.created_at, paid_at=o.paid_at, total_cents=o.total_cents,
        items=tuple(OrderItem(sku=i.sku, name=i.name, quantity=i.quantity, unit_price_cents=i.unit_price_cents,
                              category=i.category) for i in o.items),
        address=o.address, delivery_slot=o.delivery_slot, shipment=shipment,
        refunds=tuple(refund_of(r) for r in refunds), returns=tuple(return_of(r) for r in returns),
        invoice=invoice_of(inv) if inv else None, vip=bool(o.customer.vip),
        extra=_facts(policy, today, o, ship, returns, products, pay),
    )


def _facts(policy: ShopPolicy, today: date, o: Order, ship: ShipmentRow | None, returns: Sequence[ReturnRow],
           products: dict, pay: str | None) -> dict:
    """Derived facts the dialogue needs (all JSON-friendly): eligibility, deadlines, lateness."""
    delivered = ship.delivered_at if ship else None
    deadline = rules.return_deadline(policy, delivered, quality=False)
    q_deadline = rules.return_deadline(policy, delivered, quality=True)
    open_rma = any(r.open_order_id for r in returns)
    seven_day = all(p.seven_day_return for p in products.values())
    days_late = 0
    if ship and ship.promised_date:
        end = policy.local_date(delivered) if delivered else today
        days_late = max(0, (end - ship.promised_date).days)
    protect_until = None
    if o.paid_at:
        windows = [p.price_protect_days for p in products.values() if p.price_protect_days > 0]
        if windows:
            protect_until = (policy.local_date(o.paid_at) + timedelta(days=max(windows))).isoformat()
    return {
        "payment_method": pay or "",
        "can_cancel": o.status in rules.BEFORE_SHIPMENT,
        "can_change_address": o.status in rules.BEFORE_SHIPMENT,
        "can_return": bool(o.status == "delivered" and deadline and today <= deadline and seven_day
                           and not open_rma),
        "can_return_for_quality": bool(o.status == "delivered" and q_deadline and today <= q_deadline
                                       and not open_rma),
        "return_deadline": deadline.isoformat() if deadline else None,
        "quality_return_deadline": q_deadline.isoformat() if q_deadline else None,
        "seven_day_return": seven_day,
        "days_late": days_late,
        "price_protect_until": protect_until,
    }


def refund_of(r: RefundRow) -> Refund:
    return Refund(refund_id=r.refund_id, amount_cents=r.amount_cents, method=r.method, status=r.status,
                  created_at=r.created_at, expected_by=r.expected_by)


def return_of(r: ReturnRow) -> ReturnRequest:
    return ReturnRequest(rma_id=r.rma_id, order_id=r.order_id, kind=r.kind, reason=r.reason, status=r.status,
                         pickup_slot=r.pickup_slot, created_at=r.created_at)


def invoice_of(i: InvoiceRow) -> Invoice:
    return Invoice(invoice_id=i.invoice_id, title=i.title, tax_id=i.tax_id, email=i.email, status=i.status)
