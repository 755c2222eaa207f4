"""A personal offer in the web chat, in real headless Chromium against the real app (uvicorn on loopback, seeded
demo shop, offers turned on): after the order is read the offer shows with the buttons 好的，需要 / 不需要; the
customer clicks 不需要 and gets a polite close and the usual "anything else" question, nothing is written, and the
record of the chat carries the declined offer. The screenshot is kept in test-artifacts/chat-offer.png."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from browser.chromium import chromium_page, wait_js
from browser.server import serve_in_thread

from ivr.config import get_settings, load_settings
from ivr.services.records import RecordStore
from ivr.services.shop.offers import SqlOffers

pytestmark = pytest.mark.timeout(300)
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
ORDER = "100000000001"  # a Huawei phone on its way (FIXED_ORDERS): the 快充充电器 accessory coupon
BOTS = "window.ivrChat.messages.filter((x) => x.role === 'bot')"


async def _bot_after(page, count_before: int) -> dict:
    await wait_js(page, f"{BOTS}.length > {count_before}", 20000)
    return await page.evaluate(f"(() => {{ const m = {BOTS}; return m[m.length - 1]; }})()")


async def test_the_chat_shows_the_offer_with_buttons_and_a_decline_closes_politely(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("IVR_OFFERS", "1")
    get_settings.cache_clear()
    settings = load_settings({"data_dir": str(tmp_path / "data"), "demo_data": True, "offers": True})
    mic = tmp_path / "silence.wav"
    sf.write(mic, np.zeros(16000, dtype=np.int16), 16000)
    ARTIFACTS.mkdir(exist_ok=True)
    with serve_in_thread(settings) as (url, app):
        order = app.state.calls.parts.shop.get_order(ORDER)
        async with chromium_page(mic, tmp_path / "profile") as page:
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            await page.goto(f"{url}/chat")
            await wait_js(page, "window.ivrChat && window.ivrChat.ready", 20000)
            await page.fill("#input", f"查订单 {ORDER}")
            await page.click("#send")
            assert "后四位" in (await _bot_after(page, 1))["text"]
            await page.fill("#input", order.phone[-4:])
            await page.click("#send")
            bot = await _bot_after(page, 2)
            assert "核实通过" in bot["text"] and "快充充电器专享券" in bot["text"] and "请按" not in bot["text"]
            buttons = await page.eval_on_selector_all("#quick button", "els => els.map((e) => [e.dataset.key, e.textContent])")
            assert buttons == [["1", "好的，需要"], ["2", "不需要"]]
            await page.screenshot(path=str(ARTIFACTS / "chat-offer.png"), full_page=True)
            await page.click("#quick button[data-key='2']")
            bot = await _bot_after(page, 3)
            assert bot["text"].startswith("好的，不打扰您了。") and "还有" in bot["text"], bot["text"]
            assert "优惠" not in bot["text"] and "offer_declined:accessory" in bot["actions"]
            shown = await page.eval_on_selector_all(".msg.customer .bubble", "els => els.map((e) => e.textContent)")
            assert shown[-1] == "不需要"
            session_id = await page.evaluate("window.ivrChat.sessionId")
            assert not problems, problems
        app.state.chat_hub.get(session_id).close()
    assert SqlOffers(settings.database_url).coupons(order.customer_id) == []
    rec = RecordStore(settings.database_url).get(session_id)
    actions = [a for t in rec.turns for a in t.actions]
    assert rec.channel == "webchat" and "offer_made:accessory" in actions and "offer_declined:accessory" in actions
