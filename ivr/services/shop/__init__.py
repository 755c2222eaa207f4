"""Shop services: the OMS boundary (``api``), the embedded SQL store, the demo shop and the HTTP adapter.

    shop = open_shop(get_settings())      # embedded SQL shop (schema ensured; demo seeded if empty with demo_data) or HTTP OMS
    shop.get_order("100000000002")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.services.shop.api import NotAllowed, NotFound, OmsError, OmsUnavailable, ShopService
from ivr.services.shop.rules import ShopPolicy
from ivr.services.shop.seed import FIXED_ORDERS, seed_demo, seed_if_empty
from ivr.services.shop.store import SqlShop

if TYPE_CHECKING:
    from ivr.config import Settings

__all__ = [
    "FIXED_ORDERS", "NotAllowed", "NotFound", "OmsError", "OmsUnavailable", "ShopPolicy", "ShopService", "SqlShop",
    "open_shop", "policy_from_settings", "seed_demo", "seed_if_empty",
]


def policy_from_settings(settings: Settings) -> ShopPolicy:
    return ShopPolicy(return_days=settings.return_days, quality_return_days=settings.quality_return_days)


def open_shop(settings: Settings) -> ShopService:
    """The shop the bot talks to: an HTTP OMS when ``settings.oms_url`` is set, else the embedded SQL store at
    ``settings.database_url`` (migrated to head; with ``demo_data`` the demo shop is seeded when it has no orders)."""
    if settings.oms_url:
        from ivr.services.shop.http_oms import HttpShop

        return HttpShop(settings.oms_url, token=settings.oms_token, timeout_s=settings.oms_timeout_s)
    url = settings.database_url
    if settings.demo_data:
        seed_if_empty(url)
    else:
        from ivr.services.migrate import ensure_schema

        ensure_schema(url)
    return SqlShop(url, policy=policy_from_settings(settings))
