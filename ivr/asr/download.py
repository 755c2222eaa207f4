"""Fetching the default model on first start; the download itself is in :mod:`ivr.asr.transfer`.

The download primitives are re-exported here under their old names.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ivr.asr.transfer import DownloadError, ProgressFactory, fetch, registry_url
from ivr.config import Settings

__all__ = ["DownloadError", "ProgressFactory", "ensure_default_model", "fetch", "registry_url"]


def ensure_default_model(settings: Settings, progress: ProgressFactory | None,
                         say: Callable[[str], None]) -> Path | None:
    """First start: when no model serves ``settings.language``, download its default small model.

    Returns the model directory, or None (keypad mode) after saying why in one line.
    """
    from ivr.asr.models import REGISTRY, ModelError, find_model, pull

    try:
        found = find_model(settings.language, settings)
    except ModelError as e:
        say(f"speech model: {e}; calls run in keypad mode")
        return None
    if found is not None:
        return found
    info = next((m for m in REGISTRY if m.language.lower() == settings.language.lower() and m.url
                 and m.size == "small"), None)
    if info is None:
        say(f"no downloadable speech model for {settings.language}; calls run in keypad mode")
        return None
    short = info.aliases[0] if info.aliases else info.name
    try:
        return pull(info.name, settings, progress=progress, say=say)
    except ModelError as e:
        say(f"speech model not installed ({e}); calls run in keypad mode until `ivr models pull {short}`")
        return None
