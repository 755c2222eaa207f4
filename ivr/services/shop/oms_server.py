"""The OMS REST shape (docs/oms.md) served by FastAPI over any ShopService.

It is the reference implementation of the contract a shop's own order system must speak, used by the tests
of ``HttpShop`` and usable as a stand-alone OMS for the embedded store:
``uvicorn --factory ivr.services.shop.oms_server:app_from_settings``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ivr.services.shop.api import (
    Invoice,
    NotAllowed,
    NotFound,
    OmsUnavailable,
    OrderSnapshot,
    Refund,
    ReturnRequest,
    ShopService,
    Ticket,
)
from ivr.services.shop.wire import to_json


class ReturnBody(BaseModel):
    kind: Literal["return", "exchange"]
    reason: str = Field(min_length=1, max_length=255)
    pickup_slot: str = Field("", max_length=64)


class CancelBody(BaseModel):
    reason: str = Field("", max_length=255)


class AddressBody(BaseModel):
    address: str = Field(min_length=1, max_length=255)


class SlotBody(BaseModel):
    slot: str = Field(min_length=1, max_length=64)


class ResendBody(BaseModel):
    email: str | None = None


class TitleBody(BaseModel):
    title: str = Field(min_length=1, max_length=128)
    tax_id: str = Field("", max_length=32)


class TicketBody(BaseModel):
    kind: Literal["complaint", "callback", "inquiry"]
    summary: str = Field(min_length=1, max_length=2000)
    phone: str = Field("", max_length=32)
    order_id: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)


def create_oms_app(shop: ShopService, token: str = "") -> FastAPI:
    """A FastAPI app exposing ``shop`` over the documented REST shape (optionally behind a bearer token)."""
    app = FastAPI(title="ivr OMS", version="1")

    @app.middleware("http")
    async def _auth(request: Request, call_next):
        if token and request.headers.get("authorization") != f"Bearer {token}":
            return JSONResponse({"error": "unauthorized", "message": "bad or missing bearer token"}, 401)
        return await call_next(request)

    @app.exception_handler(NotFound)
    async def _not_found(_req, e: NotFound):
        return JSONResponse({"error": "not_found", "message": str(e)}, 404)

    @app.exception_handler(NotAllowed)
    async def _not_allowed(_req, e: NotAllowed):
        status = 400 if e.code == "invalid_request" else 409
        return JSONResponse({"error": "not_allowed", "code": e.code, "message": str(e)}, status)

    @app.exception_handler(OmsUnavailable)
    async def _unavailable(_req, e: OmsUnavailable):
        return JSONResponse({"error": "unavailable", "message": str(e)}, 503)

    def key(value: str | None) -> str:
        if not value:
            raise HTTPException(400, "Idempotency-Key header is required")
        return value

    @app.get("/orders/{order_id}")
    def get_order(order_id: str):
        snap = shop.get_order(order_id)
        if snap is None:
            raise NotFound(f"no order {order_id}")
        return to_json(snap, OrderSnapshot)

    @app.get("/orders")
    def orders(phone: str, limit: int = 5):
        return {"orders": to_json(shop.orders_for_phone(phone, max(1, min(limit, 50))), list[OrderSnapshot])}

    @app.get("/promotions")
    def promotions():
        return {"promotions": shop.current_promotions()}

    @app.post("/orders/{order_id}/returns")
    def create_return(order_id: str, body: ReturnBody, idempotency_key: str | None = Header(None)):
        rma = shop.create_return(order_id, body.kind, body.reason, body.pickup_slot, key(idempotency_key))
        return to_json(rma, ReturnRequest)

    @app.post("/orders/{order_id}/cancel")
    def cancel(order_id: str, body: CancelBody, idempotency_key: str | None = Header(None)):
        return to_json(shop.cancel_order(order_id, body.reason, key(idempotency_key)), OrderSnapshot)

    @app.post("/orders/{order_id}/address")
    def address(order_id: str, body: AddressBody, idempotency_key: str | None = Header(None)):
        return to_json(shop.change_address(order_id, body.address, key(idempotency_key)), OrderSnapshot)

    @app.post("/orders/{order_id}/delivery-slot")
    def slot(order_id: str, body: SlotBody, idempotency_key: str | None = Header(None)):
        return to_json(shop.change_delivery_slot(order_id, body.slot, key(idempotency_key)), OrderSnapshot)

    @app.post("/orders/{order_id}/invoice/resend")
    def resend(order_id: str, body: ResendBody, idempotency_key: str | None = Header(None)):
        return to_json(shop.resend_invoice(order_id, body.email, key(idempotency_key)), Invoice)

    @app.post("/orders/{order_id}/invoice/title")
    def title(order_id: str, body: TitleBody, idempotency_key: str | None = Header(None)):
        return to_json(shop.change_invoice_title(order_id, body.title, body.tax_id, key(idempotency_key)), Invoice)

    @app.post("/orders/{order_id}/price-protection")
    def price_protection(order_id: str, idempotency_key: str | None = Header(None)):
        return {"refund": to_json(shop.request_price_protection(order_id, key(idempotency_key)), Refund | None)}

    @app.post("/tickets")
    def ticket(body: TicketBody, idempotency_key: str | None = Header(None)):
        t = shop.create_ticket(body.kind, body.summary, body.phone, body.order_id, body.context, key(idempotency_key))
        return to_json(t, Ticket)

    return app


def app_from_settings() -> FastAPI:
    """The embedded shop of the current settings as a stand-alone OMS (uvicorn --factory)."""
    from ivr.config import get_settings
    from ivr.services.shop import open_shop

    settings = get_settings()
    return create_oms_app(open_shop(settings.model_copy(update={"oms_url": ""})), token=settings.oms_token)
