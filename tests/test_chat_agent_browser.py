"""Acceptance (issue 18): a web chat handed to a human agent, between two real headless Chromium instances and the
real app. The customer chats on /chat, checks an order after verification (order card), then types 转人工; the
agent's desktop (/agent, logged in) rings with the chat's card (order, the bot part), the agent accepts without a
microphone and types; the customer sees the reply live (WebSocket), answers, and the agent sees that; the agent ends
the chat, files the wrap-up, and the record (channel webchat) has the bot part and the agent part. The same customer
asked for a return in an earlier chat: the verification is followed by that matter, and the card lists it. Screenshots are
kept in test-artifacts/chat-agent-*.png."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from browser.chromium import CHROMIUM, chromium_flags, wait_js
from browser.server import serve_in_thread

from ivr.config import load_settings
from ivr.services.agents import AccountStore
from ivr.services.migrate import ensure_schema
from ivr.services.records import RecordStore

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
ORDER = "100000000001"  # in transit (FIXED_ORDERS)
DESK = "JSON.stringify({desk: window.ivrDesk, chat: window.ivrAgentChat})"
CHAT = "JSON.stringify(window.ivrChat)"


RETURNED = "100000000002"  # the same customer's delivered order


def _earlier_return(url: str) -> None:
    with httpx.Client(base_url=url, timeout=15) as c:
        s = c.post("/api/chat/sessions", json={}).json()
        c.headers["X-Chat-Token"] = s["chat_token"]
        for text in ("我要退货", RETURNED, "8000", "不想要了", "明天上午", "是"):
            last = c.post(f"/api/chat/sessions/{s['session_id']}/messages", json={"text": text}).json()
        assert "return_created" in last["messages"][-1]["actions"], last
        c.delete(f"/api/chat/sessions/{s['session_id']}")


@contextlib.asynccontextmanager
async def _browser(pw, fake: Path, profile: Path):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install the Debian 'chromium' package (./run setup does)")
    ctx = await pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                      args=chromium_flags(fake))
    try:
        page = ctx.pages[0] if ctx.pages else await ctx.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))  # script errors; CSP refusals are console errors:
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" and "favicon" not in str(
            m.location.get("url")) and "Failed to load resource" not in m.text else None)
        page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)  # the pages have no icon
        page.problems = problems
        yield page
    finally:
        await ctx.close()


async def _until(page, js: str, what: str, state: str, timeout_s: float = 20) -> object:
    try:
        return await wait_js(page, js, timeout_s * 1000)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}; page: {await page.evaluate(state)}") from None


async def _bot_after(page, n: int, what: str) -> dict:
    await _until(page, f"window.ivrChat.messages.filter((x) => x.role === 'bot').length > {n}", what, CHAT)
    return await page.evaluate("window.ivrChat.messages.filter((x) => x.role === 'bot').slice(-1)[0]")


async def test_chat_transferred_to_an_agent_in_a_second_browser(tmp_path) -> None:
    from playwright.async_api import async_playwright

    settings = load_settings({"data_dir": str(tmp_path / "data"), "demo_data": True, "agent_ring_timeout_s": 60.0,
                              "queue_max_wait_s": 120.0})
    ensure_schema(settings.database_url)
    AccountStore(settings.database_url).add("li.na", role="agent", password="desk-pass-1", display_name="李娜",
                                            skills=["orders"])
    mic = tmp_path / "silence.wav"
    sf.write(mic, np.zeros(16000, dtype=np.int16), 16000)
    ARTIFACTS.mkdir(exist_ok=True)
    with serve_in_thread(settings) as (url, app):
        tail = app.state.calls.parts.shop.get_order(ORDER).phone[-4:]
        await asyncio.to_thread(_earlier_return, url)  # the same customer asked for a return in the morning
        async with async_playwright() as pw, _browser(pw, mic, tmp_path / "agent") as agent, \
                _browser(pw, mic, tmp_path / "customer") as customer:
            await agent.goto(f"{url}/agent")
            await agent.fill("input[name=username]", "li.na")
            await agent.fill("input[name=password]", "desk-pass-1")
            await agent.click("button[type=submit]")
            await agent.wait_for_url(f"{url}/agent")
            await _until(agent, "window.ivrDesk.eventSource && window.ivrDesk.eventSource.readyState === 1",
                         "the event stream", DESK)
            await agent.click("#available")
            await _until(agent, "window.ivrDesk.presence === 'available'", "available", DESK)

            # the customer checks an order after verification, then asks for a person
            await customer.goto(f"{url}/chat")
            await _until(customer, "window.ivrChat && window.ivrChat.ready", "the greeting", CHAT)
            await customer.click("#quick button[data-key='1']")  # 查订单
            await _bot_after(customer, 1, "the order question")
            for n, text in ((2, ORDER), (3, tail)):
                await customer.fill("#input", text)
                await customer.click("#send")
                bot = await _bot_after(customer, n, f"the answer to {text}")
            assert "核实通过" in bot["text"] and "在网页咨询的退货" in bot["text"], bot  # the earlier contact resumed
            await customer.wait_for_selector(f".order-card[data-order='{ORDER}']")
            await customer.fill("#input", "转人工")
            await customer.click("#send")
            await _until(customer, "window.ivrChat.messages.some((m) => m.text.includes('排在第一位'))",
                         "the queue line", CHAT)
            assert not await customer.evaluate("window.ivrChat.closed")

            # the desktop rings with the chat's card: the order and the bot part
            await _until(agent, "window.ivrDesk.presence === 'ringing' && !!window.ivrDesk.offer", "ringing", DESK)
            assert ORDER in await agent.inner_text("#order")
            await _until(agent, "window.ivrAgentChat.history === 1", "the history on the card", DESK)
            earlier = await agent.inner_text("#history")
            assert "网页" in earlier and "退货" in earlier and RETURNED in earlier, earlier
            await _until(agent, "document.querySelector('#ringing h2').textContent.includes('在线咨询转接')",
                         "the chat offer's title", DESK)
            lines = await agent.inner_text("#lines")
            assert "核实通过" in lines and "****" in lines and tail not in lines  # the chat as the customer saw it
            assert "按键" not in lines and "#dtmf" not in lines
            await agent.screenshot(path=str(ARTIFACTS / "chat-agent-ringing.png"), full_page=True)
            await agent.click("#accept")  # no microphone asked for: a chat
            await _until(agent, "window.ivrDesk.presence === 'busy' && window.ivrAgentChat.active", "the chat", DESK)
            assert await agent.is_visible("#chat-text") and not await agent.is_visible("#mute")
            await _until(agent, "document.getElementById('hangup').textContent === '结束会话'", "the end button", DESK)
            assert not await agent.evaluate("window.ivrDesk.ringing")
            await _until(customer, "window.ivrChat.messages.some((m) => m.text.includes('李娜已接入'))",
                         "the connected line", CHAT)

            # both see each other's messages, live
            await agent.fill("#chat-text", "您好，我是李娜，您的快递预计后天送达。")
            await agent.press("#chat-text", "Enter")
            await _until(customer, "window.ivrChat.messages.some((m) => m.role === 'agent')", "the agent's reply",
                         CHAT)
            shown = await customer.inner_text(".msg.agent")
            assert "您好，我是李娜，您的快递预计后天送达。" in shown and "人工客服 李娜" in shown
            bots = "window.ivrChat.messages.filter((m) => m.role === 'bot').length"
            bot_count = await customer.evaluate(bots)
            await customer.fill("#input", "好的，能改成周末送吗")
            await customer.click("#send")
            await _until(agent, "window.ivrDesk.lines.some((l) => l.who === 'caller' && l.text === '好的，能改成周末送吗')",
                         "the customer's message on the desktop", DESK)
            # the desk's transcript is the masked one (ivr/privacy.py): a name after 我是 keeps its surname, the
            # agent's own included
            assert any(x["who"] == "agent" and x["text"] == "您好，我是李*，您的快递预计后天送达。"
                       for x in await agent.evaluate("window.ivrDesk.lines"))
            await asyncio.sleep(0.5)
            assert await customer.evaluate(bots) == bot_count  # a person answers now, not the bot
            await agent.screenshot(path=str(ARTIFACTS / "chat-agent-desk.png"), full_page=True)
            await customer.screenshot(path=str(ARTIFACTS / "chat-agent-customer.png"), full_page=True)

            # the agent ends the chat, then files the wrap-up
            session_id = await customer.evaluate("window.ivrChat.sessionId")
            await agent.click("#hangup")
            await _until(customer, "window.ivrChat.closed", "the end of the chat", CHAT)
            assert "客服已结束本次会话" in await customer.inner_text("#messages")
            await _until(agent, "window.ivrDesk.presence === 'wrap_up'", "wrap-up", DESK)
            await agent.select_option("#disposition", "resolved")
            await agent.fill("#note", "客户要求周末送货")
            await agent.click("#wrapup button[type=submit]")
            await _until(agent, "window.ivrDesk.presence === 'available'", "available again", DESK)
            assert not agent.problems, agent.problems
            assert not customer.problems, customer.problems
    rec = RecordStore(settings.database_url).get(session_id)
    assert rec is not None and rec.channel == "webchat" and rec.outcome == "transferred"
    assert rec.agent_id and rec.disposition == "resolved" and rec.agent_note == "客户要求周末送货"
    bot_part = [t for t in rec.turns if t.speaker == "bot"]
    agent_part = [t for t in rec.turns if t.speaker == "agent"]
    assert any("order_read" in t.actions or "caller_verified" in t.actions for t in bot_part)
    assert [t.bot_text for t in agent_part if t.bot_text] == ["您好，我是李*，您的快递预计后天送达。"]  # masked
    assert [t.caller_text for t in agent_part if t.caller_text] == ["好的，能改成周末送吗"]
