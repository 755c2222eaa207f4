"""Acceptance: real headless Chromium calls `ivr serve`'s softphone over WebRTC, hears the greeting (measured in
the page with WebAudio), keys DTMF to an order status answer for a seeded order, hangs up; the call record
shows the turns and their latencies."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from browser.chromium import chromium_page, wait_js
from browser.server import serve_in_thread

from ivr.audio.files import write_wav
from ivr.audio.frames import AudioFrame
from ivr.config import load_settings
from ivr.web.callaccess import record_headers

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow, pytest.mark.live]  # live audio, its turns' latencies recorded


async def _until(page, js: str, timeout_s: float, what: str) -> None:
    try:
        await wait_js(page, js, timeout_s * 1000)
    except Exception:
        state = await page.evaluate("JSON.stringify(window.ivrPhone)")
        raise AssertionError(f"timed out waiting for {what}; page: {state}") from None


async def _hears(page, what: str) -> None:
    """Wait until the caller has heard another half second of the bot: the reply's audio, not only its text (which
    comes first). A key pressed before the reply's first audio went out cuts that turn before it has a latency,
    which a loaded machine made likely."""
    heard = await page.evaluate("window.ivrPhone.heardMs")
    await _until(page, f"window.ivrPhone.heardMs >= {heard + 500}", 20, what)


async def test_browser_softphone_dtmf_order_status(tmp_path):
    quiet_mic = write_wav(tmp_path / "quiet.wav", AudioFrame.silence(5.0, 48000))  # keys only, no speech
    settings = load_settings({"data_dir": str(tmp_path / "data")})
    with serve_in_thread(settings) as (url, app):
        async with chromium_page(quiet_mic, tmp_path / "profile") as page:
            await page.goto(f"{url}/phone")
            assert await page.title() == "客服热线 · 网页电话"
            await page.click("#call")
            await _until(page, "window.ivrPhone.heardMs >= 500", 30, "half a second of audible greeting")
            assert await page.evaluate("window.ivrPhone.maxLevel") > 0.02
            await _until(page, "window.ivrPhone.lines.some(l => l.who === 'bot')", 10, "greeting text")
            await page.click(".keypad button[data-key='1']")  # 查订单 (stops the long keypad menu)
            await _until(page, "window.ivrPhone.lines.some(l => l.text.includes('订单号'))", 20, "order prompt")
            await _hears(page, "the order prompt's audio")
            for key in "100000000002#":
                await page.click(f".keypad button[data-key='{key}']")
            await _until(page, "window.ivrPhone.lines.some(l => l.text.includes('后四位'))", 20, "verify prompt")
            await _hears(page, "the verify prompt's audio")
            for key in "8000":  # seeded demo customer 张伟, 13800138000
                await page.click(f".keypad button[data-key='{key}']")
            await _until(page, "window.ivrPhone.lines.some(l => l.text.includes('签收'))", 20, "order status")
            await _hears(page, "the order status's audio")
            call_id = await page.evaluate("window.ivrPhone.callId")
            await page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
            await page.click("#hangup")
            await _until(page, "window.ivrPhone.state === 'ended'", 5, "ended state")
        deadline = asyncio.get_running_loop().time() + 15
        while app.state.calls.active and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        assert app.state.calls.active == 0
        async with httpx.AsyncClient() as http:
            rec = (await http.get(f"{url}/api/calls/{call_id}",
                                  headers=record_headers(app.state.settings, call_id))).json()
    assert rec["channel"] == "webrtc" and rec["ended_by"] == "caller" and rec["outcome"] == "self_served"
    turns = [(t["kind"], t["caller_text"]) for t in rec["turns"]]
    assert turns[:4] == [("start", ""), ("dtmf", "1"), ("dtmf", "100000000002#"), ("dtmf", "****")]  # tail masked
    assert "签收" in rec["turns"][3]["bot_text"]
    for t in rec["turns"][:4]:
        assert t["latency_ms"] is not None and t["timing"]["first_audio_sent"] is not None
