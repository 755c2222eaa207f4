"""The customer-facing lines of a chat handed to agents: ``agent.*`` of the language pack's ``text_channel.yaml``."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml


@cache
def _lines(pack_dir: Path) -> dict[str, str]:
    path = pack_dir / "text_channel.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return {str(k): str(v) for k, v in ((data or {}).get("agent") or {}).items()}


def agent_line(manager: Any, name: str, **fields: object) -> str:
    """The language pack's customer-facing line ``agent.<name>`` of ``text_channel.yaml`` ('' if none)."""
    text = _lines(manager.pack.dir).get(name, "")
    return text.format(**fields) if text and fields else text
