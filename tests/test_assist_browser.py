"""Acceptance: agent assist on the real desktop in headless Chromium against the real app (`ivr serve` in a thread).

Two agents are signed in (one Chromium, a browser context each, fake microphone). A caller on an in-process line in
the server's own call manager proves order 100000000002 by keypad and asks for a human; the ACD rings one agent,
who accepts. The other agent sees nothing of that call: no panel, no assist event, and the assist API refuses them. The caller then asks about the return
window: no Mandarin speech model can be installed here, so the line enters the bridge's live transcript exactly
where the bridge's recogniser puts a final line (and goes to the desktop as a ``transcript`` event); everything
after it is the real path (watcher, knowledge base, the bot's NLU, shop read, SSE, the page). The return-window
suggestion must be on the page within 1 s. "创建退货" asks the server for a preview and shows it; nothing is
written until the agent confirms; then the return is in the shop (``ivr db show``) and in the call record, and
``/api/stats`` counts the suggestion as used. (Listen / whisper / barge by a supervisor, with audio levels at each end:
tests/test_supervise_browser.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from browser.callers import verified_caller_asks_for_agent
from browser.chromium import CHROMIUM, assert_ui_texts_found, chromium_flags, wait_js, watch_ui_texts
from browser.server import serve_in_thread

from ivr.audio.files import write_wav
from ivr.audio.frames import AudioFrame
from ivr.call.local import LocalPort
from ivr.config import load_settings
from ivr.privacy import mask_text
from ivr.services.agents import AccountStore
from ivr.services.migrate import ensure_schema
from ivr.services.shop import SqlShop
from ivr.web.callaccess import record_headers

pytestmark = [pytest.mark.timeout(300), pytest.mark.live]  # "within 1 s" is measured
ORDER, TAIL = "100000000002", "8000"
QUESTION = "这双鞋七天无理由退货到哪天截止"
DESK = "JSON.stringify({desk: window.ivrDesk, assist: window.ivrAssistState})"


@contextlib.asynccontextmanager
async def _pages(fake_audio: Path, n: int):
    """``n`` pages in one headless Chromium, each in its own context (own cookies: one signed-in actor each)."""
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install the Debian 'chromium' package (./run setup does)")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_flags(fake_audio))
        try:
            pages = [await (await browser.new_context()).new_page() for _ in range(n)]
            missing = [watch_ui_texts(page) for page in pages]
            yield pages
            assert_ui_texts_found([m for found in missing for m in found])
        finally:
            await browser.close()


async def _sign_in(page, url: str, user: str, password: str) -> None:
    await page.goto(f"{url}/agent")
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{url}/agent")
    await _until(page, "window.ivrDesk.eventSource && window.ivrDesk.eventSource.readyState === 1", 10,
                 "the event stream")
    await page.click("#available")
    await _until(page, "window.ivrDesk.presence === 'available'", 10, "available")


async def _on_server(app, coro):
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, app.state.loop))


async def _verified_caller_asks_for_human(manager) -> LocalPort:
    return await verified_caller_asks_for_agent(manager, ORDER, TAIL)


async def _caller_line(app, call_id: str, text: str) -> None:
    """What the bridge's recogniser does with a final caller line (warm_transfer._transcribe)."""
    warm = app.state.calls.transfer_hook
    bridge = warm.bridges[call_id]
    line = {"who": "caller", "text": mask_text(text), "at": time.time()}
    bridge.transcript.append(line)
    warm.desk.publish(bridge.agent_id, {"type": "transcript", "call_id": call_id, **line})


async def _until(page, js: str, seconds: float, what: str) -> None:
    try:
        await wait_js(page, js, seconds * 1000, polling_ms=50)
    except Exception:
        raise AssertionError(f"timed out waiting for {what}; page: {await page.evaluate(DESK)}") from None


async def test_agent_sees_the_return_window_and_creates_the_return(tmp_path):
    settings = load_settings({"data_dir": str(tmp_path / "data"), "tts_speed": 450, "agent_ring_timeout_s": 60.0,
                              "queue_max_wait_s": 120.0})
    ensure_schema(settings.database_url)
    accounts = AccountStore(settings.database_url)
    accounts.add("wang.li", role="agent", password="desk-pass-1", display_name="王丽", skills=["orders"])
    accounts.add("li.na", role="agent", password="desk-pass-2", display_name="李娜", skills=["orders"])
    accounts.add("lead", role="supervisor", password="lead-pass-1")
    silence = write_wav(tmp_path / "silence.wav", AudioFrame(b"\x00\x00" * 16000, 16000))
    with serve_in_thread(settings) as (url, app):
        shop = SqlShop(app.state.settings.database_url)
        returns_before = {r.rma_id for r in shop.get_order(ORDER).returns}
        async with _pages(silence, 2) as (page_a, page_b):
            await _sign_in(page_a, url, "wang.li", "desk-pass-1")
            await _sign_in(page_b, url, "li.na", "desk-pass-2")
            assert await page_a.is_hidden("#assist") and await page_b.is_hidden("#assist")

            port = await _on_server(app, _verified_caller_asks_for_human(app.state.calls))
            call_id = port.info.call_id
            ringing = "window.ivrDesk.presence === 'ringing' && !!window.ivrDesk.offer"
            deadline = time.monotonic() + 60
            while not (await page_a.evaluate(ringing) or await page_b.evaluate(ringing)):
                assert time.monotonic() < deadline, "no agent's desk rang"
                await asyncio.sleep(0.1)
            page, other = (page_a, page_b) if await page_a.evaluate(ringing) else (page_b, page_a)
            holder = "wang.li" if page is page_a else "li.na"
            assert await other.evaluate("window.ivrDesk.presence") == "available"  # one call rings one agent
            await page.click("#accept")
            await _until(page, "window.ivrDesk.presence === 'busy'", 20, "on call")
            # the order facts come with the call, with the actions the order allows
            await _until(page, "!!document.querySelector('#suggestions li[data-id=\"order\"]')", 10, "order facts")
            order_li = await page.inner_text("#suggestions li[data-id=\"order\"]")
            assert ORDER in order_li and "七天无理由退货：可办理" in order_li and "可退金额" in order_li
            assert "创建退货" in order_li and "重发发票" in order_li

            # the caller asks about the return window: the suggestion is on the page within 1 s
            await asyncio.sleep(0.5)
            t0 = time.monotonic()
            await _on_server(app, _caller_line(app, call_id, QUESTION))
            await _until(page, "!!document.querySelector('#suggestions li[data-id=\"kb:seven_day_return\"]') && "
                               "!!document.querySelector('#suggestions li[data-id=\"flow:return_request\"]')", 1.0,
                         "the return-window suggestion within 1 s")
            assert time.monotonic() - t0 < 1.0
            kb = await page.inner_text("#suggestions li[data-id=\"kb:seven_day_return\"]")
            assert "七天" in kb and QUESTION in kb
            flow = await page.inner_text("#suggestions li[data-id=\"flow:return_request\"]")
            assert "七天无理由可办理" in flow and "创建退货" in flow
            assert QUESTION in await page.inner_text("#lines")
            # the other agent sees nothing of it: no panel, no assist event, and the API refuses them
            assert await other.is_hidden("#assist")
            assert await other.evaluate("window.ivrAssistState.updates") == 0
            assert await other.evaluate("document.querySelectorAll('#suggestions li').length") == 0
            assert QUESTION not in await other.inner_text("#lines")
            assert await other.evaluate(f"fetch('/api/agent/calls/{call_id}/assist').then((r) => r.status)") == 404
            assert await other.evaluate("window.ivrDesk.presence") == "available"
            shot = Path(__file__).resolve().parent.parent / "test-artifacts" / "agent-assist.png"
            shot.parent.mkdir(exist_ok=True)
            await page.screenshot(path=str(shot), full_page=True)

            # one click asks for confirmation; nothing is written before it
            await page.click("#suggestions li[data-id=\"flow:return_request\"] button.do")
            await _until(page, "!document.getElementById('confirm').hidden", 5, "the confirmation")
            assert ORDER in await page.inner_text("#confirm-text")
            assert {r.rma_id for r in shop.get_order(ORDER).returns} == returns_before
            await page.select_option("#return-pickup", "tomorrow_pm")
            await page.click("#confirm-yes")
            await _until(page, "document.getElementById('action-result').textContent.includes('已创建退货单')", 10,
                         "the return created")
            rma = (await page.evaluate("window.ivrAssistState.results"))[-1]["rma_id"]
            # the panel follows the shop: the order now has an open return and offers no second one
            await _until(page, f"document.querySelector('#suggestions li[data-id=\"order\"]').textContent"
                               f".includes('{rma}')", 5, "the order with its return")
            assert "创建退货" not in await page.inner_text("#suggestions li[data-id=\"order\"]")

            app.state.loop.call_soon_threadsafe(port.caller_hangup)
            await _until(page, "window.ivrDesk.presence === 'wrap_up'", 15, "wrap-up")
            await _on_server(app, port.close())
        deadline = time.monotonic() + 15
        while app.state.calls.active and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            rec = (await http.get(f"/api/calls/{call_id}", headers=record_headers(app.state.settings, call_id))).json()
            assert (await http.post("/api/login", json={"username": "lead", "password": "lead-pass-1"})).is_success
            stats = (await http.get("/api/stats", params={"period": "24h"})).json()["assist"]
    shown = subprocess.run([sys.executable, "-m", "ivr", "db", "show", ORDER, "--db", settings.database_url],
                           capture_output=True, text=True, timeout=120, check=True)
    returns = {r["rma_id"]: r for r in json.loads(shown.stdout)["returns"]}
    assert rma in returns and returns[rma]["status"] == "requested" and returns[rma]["pickup_slot"].endswith("PM")
    assert [(a["action"], a["rma_id"], a["agent"]) for a in rec["extra"]["agent_actions"]] == [
        ("create_return", rma, holder)]
    assert any("return_created" in t["actions"] and rma in t["bot_text"] for t in rec["turns"])
    assert "flow:return_request" in rec["extra"]["assist"]["used"]
    assert {"order", "kb:seven_day_return", "flow:return_request"} <= set(rec["extra"]["assist"]["shown"])
    assert stats["used"] >= 1 and stats["shown"] >= 3 and stats["actions"] == {"create_return": 1}
