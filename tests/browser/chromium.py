"""Headless Debian Chromium (/usr/bin/chromium) driven by Playwright; never downloads a browser.

The flags are what a closed network and a fake microphone need (measured here): loopback ICE candidates,
a WAV file as the microphone, autoplay without a gesture, no background traffic, no GPU, no sandbox as root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("IVR_CHROMIUM", "/usr/bin/chromium")


def chromium_flags(fake_audio: Path) -> list[str]:
    return [
        "--allow-loopback-in-peer-connection",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={fake_audio}",
        "--autoplay-policy=no-user-gesture-required",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-gpu",
        "--no-sandbox",
        "--disable-quic",
    ]


def watch_ui_texts(page_or_context: object) -> list[str]:
    """Collect the pages' "ui text missing" console errors (/static/ui_text.js: a key the language pack lacks, which
    the page would show as the bare key); :func:`assert_ui_texts_found` fails the test on any."""
    missing: list[str] = []
    page_or_context.on("console", lambda m: missing.append(m.text)  # type: ignore[attr-defined]
                       if m.type == "error" and "ui text missing" in m.text else None)
    return missing


def assert_ui_texts_found(missing: list[str]) -> None:
    if missing:
        pytest.fail(f"pages asked for texts their language pack lacks: {sorted(set(missing))}")


@contextlib.asynccontextmanager
async def chromium_page(fake_audio: Path, profile_dir: Path) -> AsyncIterator[object]:
    """A Playwright page in a fresh Chromium profile whose microphone plays ``fake_audio``."""
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install the Debian 'chromium' package (./run setup does)")
    from playwright.async_api import async_playwright

    profile_dir.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        ctx = await pw.chromium.launch_persistent_context(
            str(profile_dir), executable_path=CHROMIUM, headless=True, args=chromium_flags(fake_audio),
        )
        missing = watch_ui_texts(ctx)
        try:
            page = ctx.pages[0] if ctx.pages else await ctx.new_page()
            yield page
            assert_ui_texts_found(missing)  # (only after a body that passed)
        finally:
            await ctx.close()


async def wait_js(page: object, expression: str, timeout_ms: float = 30000, polling_ms: float = 100) -> object:
    """Poll ``expression`` (page.evaluate) until it is truthy; its value. Playwright's ``wait_for_function`` compiles
    its predicate with ``new Function`` inside the page, which the pages' CSP (no 'unsafe-eval') refuses."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        value = await page.evaluate(expression)  # type: ignore[attr-defined]
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_ms:.0f} ms waiting for {expression}")
        await asyncio.sleep(polling_ms / 1000)
