"""One store object per app for the project database (schema brought to head on first use)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def app_store(state: Any, name: str, factory: Callable[[str], Any]) -> Any:
    """``state.<name>``, built once as ``factory(database_url)`` after ``ensure_schema`` (``state``: app.state)."""
    store = getattr(state, name, None)
    if store is None:
        from ivr.services.migrate import ensure_schema

        url = state.settings.database_url
        ensure_schema(url)
        store = factory(url)
        setattr(state, name, store)
    return store
