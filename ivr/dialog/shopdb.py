"""Where a conversation's side tables live (verification lockout, cross-channel history): the embedded shop's
own database when the shop has one, else the service database; with the settings that key them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.config import Settings
    from ivr.services.shop.api import ShopService


def side_tables_db(shop: ShopService) -> tuple[str | None, Settings | None]:
    """(database URL or None, settings or None when they cannot be loaded)."""
    from ivr.config import ConfigError, get_settings

    try:
        settings = get_settings()
    except ConfigError:
        settings = None
    url = getattr(shop, "url", None)
    if not isinstance(url, str):
        url = settings.database_url if settings is not None else None
    return url, settings
