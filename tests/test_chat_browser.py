"""The web chat in real headless Chromium against the real app (uvicorn on loopback, seeded demo shop): a customer
opens /chat, picks "查订单" from the quick replies, types the order number and the phone tail, and sees the order
as a card; the page runs under the app's CSP (no violations) and talks over the WebSocket. The screenshot is kept
in test-artifacts/chat.png."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from browser.chromium import chromium_page, wait_js
from browser.server import serve_in_thread

from ivr.config import load_settings
from ivr.services.records import RecordStore

pytestmark = pytest.mark.timeout(300)
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
ORDER = "100000000001"  # in transit (FIXED_ORDERS)

LAST_BOT = "(() => { const m = window.ivrChat.messages.filter((x) => x.role === 'bot'); return m[m.length - 1]; })()"


async def _send(page, text: str, count_before: int) -> dict:
    await page.fill("#input", text)
    await page.click("#send")
    await wait_js(page, f"window.ivrChat.messages.filter((x) => x.role === 'bot').length > {count_before}", 20000)
    return await page.evaluate(LAST_BOT)


async def test_customer_checks_an_order_in_the_chat(tmp_path) -> None:
    settings = load_settings({"data_dir": str(tmp_path / "data"), "demo_data": True})
    mic = tmp_path / "silence.wav"
    sf.write(mic, np.zeros(16000, dtype=np.int16), 16000)
    ARTIFACTS.mkdir(exist_ok=True)
    with serve_in_thread(settings) as (url, app):
        tail = app.state.calls.parts.shop.get_order(ORDER).phone[-4:]
        async with chromium_page(mic, tmp_path / "profile") as page:
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            await page.goto(f"{url}/chat")
            await wait_js(page, "window.ivrChat && window.ivrChat.ready", 20000)  # greeted, WebSocket up
            assert "欢迎" in await page.inner_text("#messages")
            labels = await page.eval_on_selector_all("#quick button", "els => els.map((e) => e.textContent)")
            assert "查订单" in labels and "人工服务" in labels
            await page.click("#quick button[data-key='1']")  # 查订单
            await wait_js(page, "window.ivrChat.messages.filter((x) => x.role === 'bot').length > 1", 20000)
            ask = await page.evaluate(LAST_BOT)
            assert "订单号" in ask["text"] and "按" not in ask["text"]
            bot = await _send(page, ORDER, 2)
            assert "后四位" in bot["text"] and not bot["cards"]
            assert await page.locator(".order-card").count() == 0  # nothing shown before verification
            bot = await _send(page, tail, 3)
            assert "核实通过" in bot["text"], bot["text"]
            await page.wait_for_selector(f".order-card[data-order='{ORDER}']")
            card = await page.inner_text(f".order-card[data-order='{ORDER}']")
            assert ORDER in card and "正在运输途中" in card and "顺丰" in card
            shown = await page.eval_on_selector_all(".msg.customer .bubble", "els => els.map((e) => e.textContent)")
            assert shown == ["查订单", ORDER, "****"]  # the customer's own messages; the phone tail masked
            await page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)
            session_id = await page.evaluate("window.ivrChat.sessionId")
            assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
            assert not problems, problems
        hub = app.state.chat_hub
        hub.get(session_id).close()
        rec = RecordStore(settings.database_url).get(session_id)
        assert rec is not None and rec.channel == "webchat"
        assert any("order_read" in t.actions for t in rec.turns)
