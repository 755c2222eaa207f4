"""The embedded OMS: ``SqlShop`` implements ``ShopService`` over SQLAlchemy (SQLite or PostgreSQL).

Every write runs ``_idempotent`` (``idempotency.run_once``): one transaction that first claims the idempotency key (primary key, so a
concurrent duplicate waits and then fails its insert), locks the order row, checks the business rules,
writes, appends an audit row and stores the result reference on the key. A retry with the same key returns
that result; a crash anywhere before commit leaves nothing behind. Serialisation conflicts are retried.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, lazyload

from ivr.privacy import mask_address, mask_deep, mask_phone, mask_text
from ivr.services.db import session_factory
from ivr.services.shop import rules
from ivr.services.shop.api import (
    Invoice,
    NotAllowed,
    NotFound,
    OrderSnapshot,
    Refund,
    ReturnRequest,
    Ticket,
)
from ivr.services.shop.idempotency import PAUSE_ENV, run_once
from ivr.services.shop.idempotency import pause as _pause
from ivr.services.shop.models import (
    AuditLog,
    InvoiceRow,
    Order,
    Product,
    Promotion,
    RefundRow,
    ReturnRow,
    ShipmentRow,
    TicketRow,
)
from ivr.services.shop.rules import ShopPolicy
from ivr.services.shop.snapshot import invoice_of as _invoice
from ivr.services.shop.snapshot import order_snapshot
from ivr.services.shop.snapshot import refund_of as _refund
from ivr.services.shop.snapshot import return_of as _return

T = TypeVar("T")

__all__ = ["PAUSE_ENV", "SqlShop", "new_id", "normalize_order_id", "normalize_phone"]

_NONE_REF = "-"  # result reference of a write whose result is None (price protection without difference)


def normalize_phone(phone: str) -> str:
    """'+86 138-1234-5678' -> '13812345678'."""
    digits = re.sub(r"\D", "", phone or "")
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits


def normalize_order_id(order_id: str) -> str:
    return re.sub(r"\D", "", order_id or "")


def new_id(first_digit: str, length: int = 12) -> str:
    """A random digit id callers can read aloud, e.g. RMA '8xxxxxxxxxxx'."""
    return first_digit + f"{secrets.randbelow(10 ** (length - 1)):0{length - 1}d}"


class SqlShop:
    """ShopService over a SQL database (schema must be at head: see ``ivr.services.migrate.ensure_schema``)."""

    def __init__(self, url: str, *, policy: ShopPolicy | None = None,
                 clock: Callable[[], datetime] | None = None, actor: str = "bot") -> None:
        self.url = url
        self.policy = policy or ShopPolicy()
        self._clock = clock or rules.utc_now
        self.actor = actor

    # ------------------------------------------------------------------ reads
    def get_order(self, order_id: str) -> OrderSnapshot | None:
        oid = normalize_order_id(order_id)
        if not oid:
            return None
        with self._read() as s:
            order = s.get(Order, oid)
            return self._snapshot(s, order) if order else None

    def orders_for_phone(self, phone: str, limit: int = 5) -> list[OrderSnapshot]:
        """Orders whose contact phone or customer phone matches, most recent first."""
        p = normalize_phone(phone)
        if not p:
            return []
        with self._read() as s:
            from ivr.services.shop.models import Customer

            stmt = (select(Order).join(Customer).where(or_(Order.phone == p, Customer.phone == p))
                    .order_by(Order.created_at.desc(), Order.order_id.desc()).limit(max(1, min(limit, 100))))
            return [self._snapshot(s, o) for o in s.scalars(stmt)]

    def current_promotions(self) -> list[dict]:
        today = self._today()
        with self._read() as s:
            rows = s.scalars(select(Promotion).where(Promotion.starts <= today, Promotion.ends >= today)
                             .order_by(Promotion.ends, Promotion.promo_id))
            return [{"title": p.title, "detail": p.detail, "ends": p.ends.isoformat(), "category": p.category}
                    for p in rows]

    def get_return(self, rma_id: str) -> ReturnRequest | None:
        """An RMA by id (added to the contract compatibly; not in the ShopService protocol)."""
        with self._read() as s:
            row = s.get(ReturnRow, rma_id)
            return _return(row) if row else None

    def audit_entries(self, order_id: str | None = None, limit: int = 50) -> list[dict]:
        """What the bot changed, newest first (for operators and tests)."""
        with self._read() as s:
            stmt = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
            if order_id:
                stmt = stmt.where(AuditLog.order_id == order_id)
            return [{"at": a.at.isoformat(), "actor": a.actor, "action": a.action, "entity": a.entity,
                     "entity_id": a.entity_id, "order_id": a.order_id, "idempotency_key": a.idempotency_key,
                     "detail": a.detail} for a in s.scalars(stmt)]

    def count_orders(self) -> int:
        with self._read() as s:
            return int(s.scalar(select(func.count()).select_from(Order)) or 0)

    def order_ids(self, limit: int = 3000) -> list[str]:
        """The first ``limit`` order ids, in id order (api.OrderListing)."""
        with self._read() as s:
            return list(s.scalars(select(Order.order_id).order_by(Order.order_id).limit(limit)))

    # ------------------------------------------------------------------ writes
    def create_return(self, order_id: str, kind: Literal["return", "exchange"], reason: str, pickup_slot: str,
                      idempotency_key: str) -> ReturnRequest:
        oid = normalize_order_id(order_id)
        if kind not in ("return", "exchange"):
            raise NotAllowed("invalid_request", "kind must be 'return' or 'exchange'")
        reason = rules.check_text(reason, "invalid_request", 1, 255)
        pickup_slot = rules.check_text(pickup_slot, "invalid_slot", 0, 64)

        def work(s: Session, now: datetime) -> str:
            order = self._lock_order(s, oid)
            ship = s.get(ShipmentRow, oid)
            open_rma = s.scalar(select(ReturnRow.rma_id).where(ReturnRow.open_order_id == oid))
            rules.check_return(self.policy, order.status, ship.delivered_at if ship else None, reason,
                               self.policy.local_date(now), self._all_seven_day(s, order), open_rma is not None)
            rma = ReturnRow(rma_id=new_id("8"), order_id=oid, open_order_id=oid, kind=kind, reason=reason,
                            reason_code=rules.reason_code(reason), status="requested", pickup_slot=pickup_slot,
                            created_at=now)
            s.add(rma)
            s.flush()
            _pause("create_return.rma_inserted")
            order.updated_at = now
            self._audit(s, now, f"{kind}_created", "return", rma.rma_id, oid, idempotency_key,
                        {"kind": kind, "reason": mask_text(reason), "pickup_slot": pickup_slot})
            s.flush()
            _pause("create_return.audited")
            return rma.rma_id

        request = {"order_id": oid, "kind": kind, "reason": reason, "pickup_slot": pickup_slot}
        return self._idempotent("create_return", idempotency_key, request, work, self._load_return)

    def cancel_order(self, order_id: str, reason: str, idempotency_key: str) -> OrderSnapshot:
        oid = normalize_order_id(order_id)
        reason = rules.check_text(reason, "invalid_request", 0, 255)

        def work(s: Session, now: datetime) -> str:
            order = self._lock_order(s, oid)
            rules.check_before_shipment(order.status)
            was_paid = order.status == "paid"
            order.status, order.cancelled_at, order.cancel_reason, order.updated_at = "cancelled", now, reason, now
            refund_id = ""
            if was_paid:
                refund_id = new_id("6")
                s.add(RefundRow(refund_id=refund_id, order_id=oid, rma_id=None, kind="cancel",
                                amount_cents=order.total_cents, method="original", status="processing",
                                created_at=now, expected_by=self._expected_refund(now)))
            s.flush()
            _pause("cancel_order.updated")
            self._audit(s, now, "order_cancelled", "order", oid, oid, idempotency_key,
                        {"reason": mask_text(reason), "refund_id": refund_id})
            return oid

        return self._idempotent("cancel_order", idempotency_key, {"order_id": oid, "reason": reason}, work,
                                self._load_order)

    def change_address(self, order_id: str, new_address: str, idempotency_key: str) -> OrderSnapshot:
        oid = normalize_order_id(order_id)
        new_address = rules.check_text(new_address, "invalid_address", 5, 200)

        def work(s: Session, now: datetime) -> str:
            order = self._lock_order(s, oid)
            rules.check_before_shipment(order.status)
            before = order.address
            order.address, order.updated_at = new_address, now
            self._audit(s, now, "address_changed", "order", oid, oid, idempotency_key,
                        {"before": mask_address(before), "after": mask_address(new_address)})
            return oid

        return self._idempotent("change_address", idempotency_key, {"order_id": oid, "address": new_address},
                                work, self._load_order)

    def change_delivery_slot(self, order_id: str, slot: str, idempotency_key: str) -> OrderSnapshot:
        oid = normalize_order_id(order_id)
        slot = rules.check_text(slot, "invalid_slot", 1, 64)

        def work(s: Session, now: datetime) -> str:
            order = self._lock_order(s, oid)
            rules.check_before_shipment(order.status)
            before = order.delivery_slot
            order.delivery_slot, order.updated_at = slot, now
            self._audit(s, now, "delivery_slot_changed", "order", oid, oid, idempotency_key,
                        {"before": before, "after": slot})
            return oid

        return self._idempotent("change_delivery_slot", idempotency_key, {"order_id": oid, "slot": slot}, work,
                                self._load_order)

    def resend_invoice(self, order_id: str, email: str | None, idempotency_key: str) -> Invoice:
        oid = normalize_order_id(order_id)
        email = rules.check_email(email) if email else None

        def work(s: Session, now: datetime) -> str:
            order = self._lock_order(s, oid)
            if order.status == "cancelled":
                raise NotAllowed("already_cancelled", "the order is cancelled")
            inv = s.scalar(select(InvoiceRow).where(InvoiceRow.order_id == oid))
            if inv is None:
                raise NotAllowed("no_invoice", "no invoice was requested for this order")
            if inv.status != "issued":
                raise NotAllowed("invoice_pending", "the invoice is still being issued")
            if email:
                inv.email = email
            if not inv.email:
                raise NotAllowed("invalid_email", "no e-mail address on file")
            inv.sent_count += 1
            inv.updated_at = now
            self._audit(s, now, "invoice_resent", "invoice", inv.invoice_id, oid, idempotency_key,
                        {"email": _mask_email(inv.email)})
            return inv.invoice_id

        return self._idempotent("resend_invoice", idempotency_key, {"order_id": oid, "email": email}, work,
                                self._load_invoice)

    def change_invoice_title(self, order_id: str, title: str, tax_id: str, idempotency_key: str) -> Invoice:
        oid = normalize_order_id(order_id)
        title = rules.check_text(title, "invalid_request", 2, 100)
        tax_id = rules.check_tax_id(tax_id)

        def work(s: Session, now: datetime) -> str:
            order = self._lock_order(s, oid)
            if order.status in ("cancelled", "unpaid"):
                raise NotAllowed("already_cancelled" if order.status == "cancelled" else "not_paid",
                                 "no invoice for an order that is not paid")
            inv = s.scalar(select(InvoiceRow).where(InvoiceRow.order_id == oid))
            before = {"title": inv.title, "tax_id": inv.tax_id} if inv else {}
            if inv is None:
                inv = InvoiceRow(invoice_id=new_id("9"), order_id=oid, title=title, tax_id=tax_id, email="",
                                 status="pending", sent_count=0, updated_at=now)
                s.add(inv)
            inv.title, inv.tax_id, inv.status, inv.updated_at = title, tax_id, "pending", now  # re-issue
            s.flush()
            self._audit(s, now, "invoice_title_changed", "invoice", inv.invoice_id, oid, idempotency_key,
                        {"before": before, "after": {"title": title, "tax_id": tax_id}})
            return inv.invoice_id

        return self._idempotent("change_invoice_title", idempotency_key,
                                {"order_id": oid, "title": title, "tax_id": tax_id}, work, self._load_invoice)

    def request_price_protection(self, order_id: str, idempotency_key: str) -> Refund | None:
        oid = normalize_order_id(order_id)

        def work(s: Session, now: datetime) -> str:
            order = self._lock_order(s, oid)
            rules.check_price_protection(order.status, order.paid_at)
            today = self.policy.local_date(now)
            paid_day = self.policy.local_date(order.paid_at)
            supported = open_window = 0
            amount = 0
            changes = []
            for item in order.items:
                product = s.get(Product, item.sku)
                if product is None or product.price_protect_days <= 0:
                    continue
                supported += 1
                if today > paid_day + timedelta(days=product.price_protect_days):
                    continue
                open_window += 1
                diff = item.unit_price_cents - item.protected_cents - product.price_cents
                if diff > 0:
                    item.protected_cents += diff
                    amount += diff * item.quantity
                    changes.append({"sku": item.sku, "per_unit_cents": diff, "quantity": item.quantity})
            if not supported:
                raise NotAllowed("price_protect_not_supported", "no item of this order has price protection")
            if not open_window:
                raise NotAllowed("price_protect_window_closed", "the price protection window has ended")
            if amount == 0:
                self._audit(s, now, "price_protection_checked", "order", oid, oid, idempotency_key, {"amount_cents": 0})
                return _NONE_REF
            refund_id = new_id("6")
            s.add(RefundRow(refund_id=refund_id, order_id=oid, rma_id=None, kind="price_protection",
                            amount_cents=amount, method="original", status="processing", created_at=now,
                            expected_by=self._expected_refund(now)))
            order.updated_at = now
            s.flush()
            self._audit(s, now, "price_protection_refund", "refund", refund_id, oid, idempotency_key,
                        {"amount_cents": amount, "items": changes})
            return refund_id

        return self._idempotent("request_price_protection", idempotency_key, {"order_id": oid}, work,
                                self._load_refund)

    def create_ticket(self, kind: Literal["complaint", "callback", "inquiry"], summary: str, phone: str,
                      order_id: str | None, context: dict, idempotency_key: str) -> Ticket:
        if kind not in ("complaint", "callback", "inquiry"):
            raise NotAllowed("invalid_request", "kind must be complaint, callback or inquiry")
        summary = rules.check_text(mask_text(summary), "invalid_request", 1, 2000)
        phone = normalize_phone(phone)
        oid = normalize_order_id(order_id) if order_id else None
        try:
            context = mask_deep(json.loads(json.dumps(context or {}, ensure_ascii=False, default=str)))
        except (TypeError, ValueError):
            raise NotAllowed("invalid_request", "context must be JSON-serialisable") from None

        def work(s: Session, now: datetime) -> str:
            ticket_id = new_id("5")
            s.add(TicketRow(ticket_id=ticket_id, kind=kind, summary=summary, status="open", phone=phone,
                            order_id=oid, context=context, created_at=now))
            s.flush()
            self._audit(s, now, f"ticket_{kind}", "ticket", ticket_id, oid, idempotency_key,
                        {"phone": mask_phone(phone), "summary": summary[:200]})
            return ticket_id

        request = {"kind": kind, "summary": summary, "phone": phone, "order_id": oid, "context": context}
        return self._idempotent("create_ticket", idempotency_key, request, work, self._load_ticket)

    # ------------------------------------------------------------------ machinery
    def _read(self) -> Session:
        return session_factory(self.url)()

    def _now(self) -> datetime:
        return self._clock()

    def _today(self):
        return self.policy.local_date(self._now())

    def _expected_refund(self, now: datetime):
        return self.policy.local_date(now) + timedelta(days=self.policy.refund_days)

    def _idempotent(self, operation: str, key: str, request: dict, work: Callable[[Session, datetime], str],
                    load: Callable[[str], T]) -> T:
        """Run ``work`` once per idempotency key (``idempotency.run_once``)."""
        return run_once(self.url, self._now, operation, key, request, work, load)

    def _lock_order(self, s: Session, oid: str) -> Order:
        stmt = select(Order).where(Order.order_id == oid).options(lazyload(Order.customer)).with_for_update()
        order = s.scalar(stmt)
        if order is None:
            raise NotFound(f"no order {oid}")
        return order

    def _audit(self, s: Session, now: datetime, action: str, entity: str, entity_id: str, order_id: str | None,
               key: str, detail: dict) -> None:
        s.add(AuditLog(at=now, actor=self.actor, action=action, entity=entity, entity_id=entity_id,
                       order_id=order_id, idempotency_key=key, detail=detail))

    def _all_seven_day(self, s: Session, order: Order) -> bool:
        skus = {i.sku for i in order.items}
        flags = s.scalars(select(Product.seven_day_return).where(Product.sku.in_(skus))).all()
        return all(flags)

    def _load_order(self, ref: str) -> OrderSnapshot:
        snap = self.get_order(ref)
        if snap is None:
            raise NotFound(ref)
        return snap

    def _load_return(self, ref: str) -> ReturnRequest:
        rma = self.get_return(ref)
        if rma is None:
            raise NotFound(ref)
        return rma

    def _load_invoice(self, ref: str) -> Invoice:
        with self._read() as s:
            return _invoice(s.get(InvoiceRow, ref))

    def _load_refund(self, ref: str) -> Refund | None:
        if ref == _NONE_REF:
            return None
        with self._read() as s:
            return _refund(s.get(RefundRow, ref))

    def _load_ticket(self, ref: str) -> Ticket:
        with self._read() as s:
            t = s.get(TicketRow, ref)
            return Ticket(ticket_id=t.ticket_id, kind=t.kind, summary=t.summary, status=t.status,
                          created_at=t.created_at)

    def _snapshot(self, s: Session, o: Order) -> OrderSnapshot:
        return order_snapshot(s, o, self.policy, self._today())


def _mask_email(email: str) -> str:
    name, _, domain = email.partition("@")
    return (name[:1] + "***@" + domain) if domain else "***"

