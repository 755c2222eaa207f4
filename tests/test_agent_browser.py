"""Acceptance: warm transfer between two real headless Chromium instances and `ivr serve`.

The caller (softphone /phone, a fake microphone playing short 900 Hz beeps) keys an order status, then asks for a
human (key 0). The agent (desktop /agent, logged in, a fake microphone playing 1700 Hz beeps) sees the context card
with the right order and summary, accepts, hears the whisper, and then each browser hears the other side's tone
(measured in the page with WebAudio: the dominant frequency of what arrives). The caller hangs up: both legs close,
the agent files the wrap-up, and the call record keeps the bot part, the agent and the disposition.
The ringing desktop is kept as test-artifacts/agent-ringing.png.
Beeps are 150 ms long, shorter than the VAD's minimum speech, so they never interrupt the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import numpy as np
import pytest
from browser.chromium import CHROMIUM, assert_ui_texts_found, chromium_flags, wait_js, watch_ui_texts
from browser.server import serve_in_thread

from ivr.audio.files import write_wav
from ivr.audio.frames import AudioFrame
from ivr.config import load_settings
from ivr.services.agents import AccountStore
from ivr.services.migrate import ensure_schema
from ivr.web.callaccess import record_headers

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow, pytest.mark.live]  # two Chromiums' WebRTC audio, measured
CALLER_HZ, AGENT_HZ = 900.0, 1700.0
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"  # screenshots kept for people to look at

# Dominant frequency of the audio arriving on <audio id=...> over ``ms``: loud windows and those at ``hz``.
_TONE_JS = """async (args) => {
  const stream = document.getElementById(args.id).srcObject;
  const ctx = new AudioContext(); const an = ctx.createAnalyser(); an.fftSize = 4096;
  ctx.createMediaStreamSource(stream).connect(an);
  const f = new Float32Array(an.frequencyBinCount), t = new Float32Array(an.fftSize);
  let loud = 0, hit = 0; const peaks = [];
  const end = performance.now() + args.ms;
  while (performance.now() < end) {
    await new Promise((r) => setTimeout(r, 20));
    an.getFloatTimeDomainData(t); let s = 0; for (const x of t) s += x * x;
    if (Math.sqrt(s / t.length) < 0.01) continue;
    loud++; an.getFloatFrequencyData(f);
    let bi = 1; for (let i = 2; i < f.length; i++) if (f[i] > f[bi]) bi = i;
    const hz = bi * ctx.sampleRate / an.fftSize; peaks.push(Math.round(hz));
    if (Math.abs(hz - args.hz) < 60) hit++;
  }
  ctx.close(); return { loud, hit, peaks: peaks.slice(0, 60) };
}"""


def _beeps(path: Path, hz: float, seconds: float = 10.0, rate: int = 48000) -> Path:
    t = np.arange(int(rate * 0.15)) / rate
    beep = np.sin(2 * np.pi * hz * t) * 0.5 * np.minimum(1, np.minimum(t, t[::-1]) / 0.01)
    period = np.zeros(rate)
    period[: len(beep)] = beep
    audio = np.tile(period, int(seconds))
    return write_wav(path, AudioFrame.from_numpy(audio.astype(np.float32), rate))


@contextlib.asynccontextmanager
async def _browser(pw, fake: Path, profile: Path):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install the Debian 'chromium' package (./run setup does)")
    ctx = await pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                      args=chromium_flags(fake))
    missing = watch_ui_texts(ctx)
    try:
        yield ctx.pages[0] if ctx.pages else await ctx.new_page()
        assert_ui_texts_found(missing)
    finally:
        await ctx.close()


async def _until(page, js: str, timeout_s: float, what: str, state: str) -> None:
    try:
        await wait_js(page, js, timeout_s * 1000)
    except Exception:
        raise AssertionError(f"timed out waiting for {what}; page: {await page.evaluate(state)}") from None


def _phone(js: str) -> str:
    return f"window.ivrPhone.lines.some(l => {js})"


async def test_warm_transfer_between_two_browsers(tmp_path):
    from playwright.async_api import async_playwright

    settings = load_settings({"data_dir": str(tmp_path / "data"), "tts_speed": 450, "agent_ring_timeout_s": 60.0,
                              "queue_max_wait_s": 120.0})
    ensure_schema(settings.database_url)
    AccountStore(settings.database_url).add("wang.li", role="agent", password="desk-pass-1",
                                            display_name="王丽", skills=["orders"])
    caller_wav = _beeps(tmp_path / "caller.wav", CALLER_HZ)
    agent_wav = _beeps(tmp_path / "agent.wav", AGENT_HZ)
    phone_state, desk_state = "JSON.stringify(window.ivrPhone)", "JSON.stringify(window.ivrDesk)"
    with serve_in_thread(settings) as (url, app):
        async with async_playwright() as pw, _browser(pw, agent_wav, tmp_path / "agent") as agent, \
                _browser(pw, caller_wav, tmp_path / "caller") as caller:
            # the agent logs in (the desktop sends anonymous users to the login page) and goes available
            await agent.goto(f"{url}/agent")
            assert "/login" in agent.url
            await agent.fill("input[name=username]", "wang.li")
            await agent.fill("input[name=password]", "desk-pass-1")
            await agent.click("button[type=submit]")
            await agent.wait_for_url(f"{url}/agent")
            await _until(agent, "window.ivrDesk.eventSource && window.ivrDesk.eventSource.readyState === 1", 10,
                         "the event stream", desk_state)
            await agent.click("#available")
            await _until(agent, "window.ivrDesk.presence === 'available'", 10, "available", desk_state)

            # the caller checks an order by keypad, then asks for a human
            await caller.goto(f"{url}/phone")
            await caller.click("#call")
            await _until(caller, _phone("l.who === 'bot'"), 30, "the greeting", phone_state)
            await caller.click(".keypad button[data-key='1']")
            await _until(caller, _phone("l.text.includes('订单号')"), 20, "order prompt", phone_state)
            for key in "100000000002#":
                await caller.click(f".keypad button[data-key='{key}']")
            await _until(caller, _phone("l.text.includes('后四位')"), 20, "verify prompt", phone_state)
            for key in "8000":
                await caller.click(f".keypad button[data-key='{key}']")
            await _until(caller, _phone("l.text.includes('签收')"), 20, "order status", phone_state)
            await caller.click(".keypad button[data-key='0']")
            await _until(caller, _phone("l.text.includes('人工')"), 20, "transfer line", phone_state)

            # the agent's desktop rings with the context card
            await _until(agent, "window.ivrDesk.presence === 'ringing' && !!window.ivrDesk.offer", 20, "ringing", desk_state)
            await _until(agent, "document.querySelector('#order').innerText.includes('100000000002')", 10,
                         "the order on the card (drawn after the ring)", desk_state)
            summary = await agent.inner_text("#summary")
            assert "100000000002" in summary and "已核实" in summary and "客户要求" in summary
            facts = await agent.inner_text("#facts")
            assert "查订单" in facts and "已核实" in facts and "客户要求" in facts
            lines = await agent.inner_text("#lines")
            assert "8000" not in lines.replace("****8000", ""), "the phone tail must be masked on the card"
            ARTIFACTS.mkdir(exist_ok=True)
            await agent.screenshot(path=str(ARTIFACTS / "agent-ringing.png"), full_page=True)
            await agent.click("#accept")
            await _until(agent, "window.ivrDesk.presence === 'busy'", 20, "on call", desk_state)
            await _until(caller, _phone("l.text.includes('已为您接通')"), 40, "connected line", phone_state)

            # each browser hears the other side (after the caller's "connected" line has been played)
            await asyncio.sleep(3.0)
            heard_by_agent, heard_by_caller = await asyncio.gather(
                agent.evaluate(_TONE_JS, {"id": "remote", "hz": CALLER_HZ, "ms": 5000}),
                caller.evaluate(_TONE_JS, {"id": "remote", "hz": AGENT_HZ, "ms": 5000}),
            )
            assert heard_by_agent["hit"] >= 3 and heard_by_agent["hit"] >= heard_by_agent["loud"] * 0.5, heard_by_agent
            assert heard_by_caller["hit"] >= 3 and heard_by_caller["hit"] >= heard_by_caller["loud"] * 0.5, \
                heard_by_caller
            assert await agent.evaluate("window.ivrDesk.maxLevel") > 0.02  # the whisper and the caller

            call_id = await caller.evaluate("window.ivrPhone.callId")
            await caller.click("#hangup")
            await _until(agent, "window.ivrDesk.presence === 'wrap_up'", 15, "wrap-up after the caller left",
                         desk_state)
            assert any(x["text"] == "客户已挂机" for x in await agent.evaluate("window.ivrDesk.lines"))
            await _until(agent, "window.ivrDesk.legClosed === true", 5, "the agent's leg closed", desk_state)
            await _until(caller, "window.ivrPhone.state === 'ended'", 5, "the caller's line closed", phone_state)
            await agent.select_option("#disposition", "resolved")
            await agent.fill("#note", "已告知物流时效，客户电话13800138000")
            await agent.click("#wrapup button[type=submit]")
            await _until(agent, "window.ivrDesk.presence === 'available'", 10, "available again", desk_state)
        deadline = asyncio.get_running_loop().time() + 15
        while app.state.calls.active and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        assert app.state.calls.active == 0
        async with httpx.AsyncClient(base_url=url) as http:
            rec = (await http.get(f"/api/calls/{call_id}", headers=record_headers(app.state.settings, call_id))).json()
    assert rec["outcome"] == "transferred" and rec["transfer_reason"] == "human_request"
    assert rec["agent_id"].startswith("ag_") and rec["disposition"] == "resolved"
    assert "138****" in rec["agent_note"] and "13800138000" not in rec["agent_note"]
    assert [t["caller_text"] for t in rec["turns"][1:5]] == ["1", "100000000002#", "****", "0"]  # tail masked
    assert rec["extra"]["agents"] == ["wang.li"]
