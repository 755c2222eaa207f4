"""Acceptance: the supervisor's live wall in real headless Chromium against the real app (`ivr serve` in a thread).

A supervisor logs in and opens /wall. An agent (HTTP desktop API) goes available. A caller on an in-process line
(LocalPort in the server's own call manager, espeak-ng speech with its reference text) says something angry: the
dialogue transfers at once with priority, the caller waits in the queue and the agent's desktop rings. The wall
shows the queued caller and each change of the agent's state within 2 s, the queue and anger alerts, and the call
leaving the queue when the caller hangs up. A supervisor's login is needed (anonymous: login page; agent: 403).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from audio_gen import synth
from browser.chromium import chromium_page, wait_js
from browser.server import serve_in_thread

from ivr.audio.files import write_wav
from ivr.audio.frames import AudioFrame
from ivr.call.local import LocalPort
from ivr.config import load_settings
from ivr.services.agents import AccountStore
from ivr.services.migrate import ensure_schema

pytestmark = [pytest.mark.timeout(240), pytest.mark.live]  # "within 2 s" is measured
ANGRY = "你们这破公司就是骗子，气死我了"
WALL = "JSON.stringify(window.ivrWall && window.ivrWall.snapshot)"


async def _on_server(app, coro):
    """Run ``coro`` on the server's event loop (where the call manager and the desk live)."""
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, app.state.loop))


async def _angry_caller(manager) -> LocalPort:
    port = LocalPort(channel="webrtc")
    port.start()
    manager.start_call(port, manager.reserve(port.info.call_id), asr_mode="reference")
    await port.wait_bot(1, quiet=False)
    port.reference(ANGRY)
    port.say(synth(ANGRY))
    return port


async def _within(page, js: str, seconds: float, what: str, t0: float) -> float:
    """Wait until ``js`` holds on the page, at most ``seconds`` after ``t0`` (monotonic); the delay."""
    left = max(0.05, seconds - (time.monotonic() - t0))
    try:
        await wait_js(page, js, left * 1000, polling_ms=50)
    except Exception:
        raise AssertionError(f"the wall did not show {what} within {seconds} s; wall: {await page.evaluate(WALL)}") \
            from None
    return time.monotonic() - t0


async def test_wall_shows_the_queue_agents_and_alerts_live(tmp_path):
    settings = load_settings({"data_dir": str(tmp_path / "data"), "tts_speed": 450, "agent_ring_timeout_s": 60.0,
                              "queue_max_wait_s": 60.0, "wall_queue_alert": 1, "service_level_s": 20.0})
    ensure_schema(settings.database_url)
    accounts = AccountStore(settings.database_url)
    accounts.add("lead", role="supervisor", password="lead-pass-1", display_name="赵主管")
    accounts.add("wang.li", role="agent", password="desk-pass-1", display_name="王丽", skills=["complaints"])
    silence = write_wav(tmp_path / "silence.wav", AudioFrame(b"\x00\x00" * 16000, 16000))
    with serve_in_thread(settings) as (url, app), \
            httpx.Client(base_url=url, timeout=30) as agent, httpx.Client(base_url=url, timeout=30) as anon:
        assert anon.get("/api/wall").status_code == 401
        assert anon.get("/wall", follow_redirects=False).headers["location"] == "/login?next=/wall"
        assert agent.post("/api/login", json={"username": "wang.li", "password": "desk-pass-1"}).is_success
        assert agent.get("/api/wall").status_code == 403 and agent.get("/api/wall/events").status_code == 403

        async with chromium_page(silence, tmp_path / "wall") as page:
            await page.goto(f"{url}/wall")
            assert "/login" in page.url
            await page.fill("input[name=username]", "lead")
            await page.fill("input[name=password]", "lead-pass-1")
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{url}/wall")
            await wait_js(page, "window.ivrWall.updates > 0", 10000)
            assert await page.text_content("#queue-length") == "0"
            assert await page.text_content("#calls-total") == "0"

            # the agent opens the desktop's state and goes available: the wall shows it within 2 s
            assert agent.get("/api/agent/state").is_success
            t0 = time.monotonic()
            assert agent.post("/api/agent/presence", json={"state": "available"}).is_success
            await _within(page, "document.querySelector('#agents tr[data-agent=\"wang.li\"]')?.dataset.presence"
                                " === 'available'", 2.0, "the agent available", t0)
            assert "1 空闲" in await page.text_content("#agents-available")

            # an angry caller: the bot transfers at once; the wall shows the caller queued within 2 s of the desk
            port = await _on_server(app, _angry_caller(app.state.calls))
            desk = app.state.calls.desk
            deadline = time.monotonic() + 60
            while not desk.queue:
                assert time.monotonic() < deadline, f"the caller was never queued: {port.bot_text()}"
                await asyncio.sleep(0.02)
            t0 = time.monotonic()
            call_id = desk.queue[0].call_id
            await _within(page, f"document.querySelector('#queue tr[data-call=\"{call_id}\"]') && "
                                "document.getElementById('queue-length').textContent === '1'", 2.0,
                          "the queued caller", t0)
            assert await page.text_content("#calls-queue") == "1"
            assert await page.get_attribute(f"#live tr[data-call=\"{call_id}\"]", "data-state") == "queue"
            await _within(page, "document.querySelector('#alerts .alert.queue') && "
                                "document.querySelector('#alerts .alert.angry')", 2.0, "the alerts", t0)
            assert "情绪激动" in await page.text_content("#alerts .alert.angry")
            assert "排队 1 人" in await page.text_content("#alerts .alert.queue")
            assert "激动" in await page.text_content(f"#queue tr[data-call=\"{call_id}\"]")

            # the desktop rings (the wall shows it), the agent declines, then steps away: each within 2 s
            await _within(page, "document.querySelector('#agents tr[data-agent=\"wang.li\"]')?.dataset.presence"
                                " === 'ringing'", 5.0, "the agent ringing", time.monotonic())
            offer = agent.get("/api/agent/state").json()["offer"]
            t0 = time.monotonic()
            assert agent.post(f"/api/agent/offers/{offer['offer_id']}/decline").status_code == 204
            await _within(page, "document.querySelector('#agents tr[data-agent=\"wang.li\"]')?.dataset.presence"
                                " === 'available'", 2.0, "the agent available again", t0)
            t0 = time.monotonic()
            assert agent.post("/api/agent/presence", json={"state": "away"}).is_success
            await _within(page, "document.querySelector('#agents tr[data-agent=\"wang.li\"]')?.dataset.presence"
                                " === 'away'", 2.0, "the agent away", t0)
            assert "离开 1" in await page.text_content("#agents-summary")
            await wait_js(page, "parseInt(document.getElementById('queue-longest').textContent) >= 1", 5000)
            shot = Path(__file__).resolve().parent.parent / "test-artifacts" / "wall.png"
            shot.parent.mkdir(exist_ok=True)
            await page.screenshot(path=str(shot), full_page=True)

            # the caller gives up: the queue empties and the alerts go
            app.state.loop.call_soon_threadsafe(port.caller_hangup)
            await _within(page, "document.getElementById('queue-length').textContent === '0' && "
                                "document.getElementById('calls-total').textContent === '0' && "
                                "!document.querySelector('#alerts .alert')", 5.0, "the call gone", time.monotonic())
            await _on_server(app, port.close())
