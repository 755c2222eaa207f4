"""Shared test fixtures. Tests use real parts (Vosk, espeak-ng, webrtcvad, SQLite, Chromium, sipp)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("IVR_SHARED_DIR", ROOT.parent / "shared"))


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch):
    """Every test gets its own data dir and fresh settings (no leaking state between tests)."""
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("IVR_CONFIG", raising=False)
    from ivr.config import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def shared_path(*parts: str) -> Path:
    """Path under ../shared, or a 'not run' skip with the reason when the folder is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"NOT RUN: needs ../shared data ({p} absent); the suite itself does not depend on it")
    return p
