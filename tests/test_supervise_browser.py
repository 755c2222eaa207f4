"""Acceptance: listen, whisper and barge from the wall, with real headless Chromium for the supervisor and the agent
and the real app (`ivr serve` in a thread).

A caller on an in-process line (the server's own call manager) proves an order by keypad and asks for a human;
the agent (desktop, fake microphone: 1700 Hz beeps) accepts; the caller then beeps at 900 Hz. The supervisor
(wall, fake microphone: a steady 2500 Hz tone) joins the call from the live-calls table. Each side is checked by
what actually arrives there, per 20 ms window, in the 2500 / 1700 / 900 Hz bands: in the pages with WebAudio, at
the caller from the audio the line received.

* listen: the supervisor hears the caller (900 Hz) and the agent (1700 Hz); neither hears the supervisor;
* whisper: the agent hears the supervisor, the caller does not;
* barge: both hear the supervisor.
Every step is in the call record (``extra.supervision``), the supervisor's leave too when the call ends under them
(read back from the database); agents and admins may not supervise (403).
"""

from __future__ import annotations

import asyncio
import time

import httpx
import numpy as np
import pytest
from browser.callers import verified_caller_asks_for_agent
from browser.chromium import chromium_page, wait_js
from browser.server import serve_in_thread

from ivr.audio.files import write_wav
from ivr.audio.frames import AudioFrame
from ivr.call.local import LocalPort
from ivr.config import load_settings
from ivr.services.agents import AccountStore
from ivr.services.migrate import ensure_schema
from ivr.services.records import RecordStore
from ivr.web.callaccess import record_headers

pytestmark = [pytest.mark.timeout(360), pytest.mark.slow, pytest.mark.live]
CALLER_HZ, AGENT_HZ, SUP_HZ = 900.0, 1700.0, 2500.0
ORDER, TAIL = "100000000002", "8000"
PAGE = ("JSON.stringify({desk: window.ivrDesk, sv: window.ivrSupervise, "
        "live: window.ivrWall && window.ivrWall.snapshot && window.ivrWall.snapshot.live})")

# Per 20 ms window of what arrives on <audio id=args.id>: the windows whose band around each frequency is loud.
_BANDS_JS = """async (args) => {
  const stream = document.getElementById(args.id).srcObject;
  const ctx = new AudioContext(); const an = ctx.createAnalyser(); an.fftSize = 2048; an.smoothingTimeConstant = 0;
  ctx.createMediaStreamSource(stream).connect(an);
  const f = new Float32Array(an.frequencyBinCount);
  const hits = {}; args.hz.forEach((h) => { hits[h] = 0; });
  let windows = 0; const end = performance.now() + args.ms;
  while (performance.now() < end) {
    await new Promise((r) => setTimeout(r, 20));
    an.getFloatFrequencyData(f); windows++;
    for (const h of args.hz) {
      const bin = Math.round(h * an.fftSize / ctx.sampleRate); let peak = -Infinity;
      for (let i = bin - 2; i <= bin + 2; i++) peak = Math.max(peak, f[i]);
      if (peak > args.db) hits[h]++;
    }
  }
  ctx.close(); return { windows, hits };
}"""


def _tone_wav(path, hz: float, *, beep_s: float | None, seconds: float = 10.0, rate: int = 48000):
    t = np.arange(int(rate * seconds)) / rate
    audio = np.sin(2 * np.pi * hz * t) * 0.4
    if beep_s is not None:  # beeps of beep_s every second
        audio *= (t % 1.0) < beep_s
    return write_wav(path, AudioFrame.from_numpy(audio.astype(np.float32), rate))


def _caller_beeps(seconds: float, rate: int = 16000) -> AudioFrame:
    t = np.arange(int(rate * seconds)) / rate
    audio = np.sin(2 * np.pi * CALLER_HZ * t) * 0.4 * ((t % 0.5) < 0.3)
    return AudioFrame.from_numpy(audio.astype(np.float32), rate)


def _caller_hits(port: LocalPort, t0: float, t1: float, hz: float) -> tuple[int, int]:
    """(windows, windows with the ``hz`` band above -40 dBFS) in what the caller's line received in [t0, t1]."""
    frames = [f for t, f in list(port.sent) if t0 <= t <= t1]
    hits = 0
    for f in frames:
        a = f.to_float()
        w = np.hanning(len(a))
        spec = np.abs(np.fft.rfft(a * w)) * 2 / w.sum()
        k = int(round(hz * len(a) / f.sample_rate))
        if spec[max(0, k - 1):k + 2].max() > 0.01:
            hits += 1
    return len(frames), hits


async def _on_server(app, coro):
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, app.state.loop))


async def _caller(manager) -> LocalPort:
    return await verified_caller_asks_for_agent(manager, ORDER, TAIL)


async def _until(page, js: str, seconds: float, what: str) -> None:
    try:
        await wait_js(page, js, seconds * 1000)
    except Exception:
        raise AssertionError(f"timed out waiting for {what}; page: {await page.evaluate(PAGE)}") from None


async def _login(page, url: str, path: str, user: str, password: str) -> None:
    await page.goto(f"{url}{path}")
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{url}{path}")


async def _measure(sup, agent, port: LocalPort, ms: int = 3000) -> tuple[dict, dict, tuple[int, int]]:
    """What the supervisor, the agent and the caller receive over the same ``ms``."""
    t0 = time.monotonic()
    heard_sup, heard_agent = await asyncio.gather(
        sup.evaluate(_BANDS_JS, {"id": "sv-audio", "hz": [CALLER_HZ, AGENT_HZ, SUP_HZ], "ms": ms, "db": -60}),
        agent.evaluate(_BANDS_JS, {"id": "remote", "hz": [SUP_HZ], "ms": ms, "db": -60}))
    return heard_sup, heard_agent, _caller_hits(port, t0, time.monotonic(), SUP_HZ)


def _share(heard: dict, hz: float) -> float:
    return heard["hits"][str(int(hz))] / max(1, heard["windows"])


async def test_listen_whisper_barge_reach_the_right_people(tmp_path):
    settings = load_settings({"data_dir": str(tmp_path / "data"), "tts_speed": 450, "agent_ring_timeout_s": 60.0,
                              "queue_max_wait_s": 120.0, "whisper_summary": False})
    ensure_schema(settings.database_url)
    accounts = AccountStore(settings.database_url)
    accounts.add("wang.li", role="agent", password="desk-pass-1", display_name="王丽", skills=["orders"])
    accounts.add("lead", role="supervisor", password="lead-pass-1", display_name="赵主管")
    accounts.add("root", role="admin", password="root-pass-1")
    agent_wav = _tone_wav(tmp_path / "agent.wav", AGENT_HZ, beep_s=0.3)
    sup_wav = _tone_wav(tmp_path / "sup.wav", SUP_HZ, beep_s=None)
    with serve_in_thread(settings) as (url, app):
        async with chromium_page(agent_wav, tmp_path / "agent") as agent, \
                chromium_page(sup_wav, tmp_path / "sup") as sup:
            await _login(agent, url, "/agent", "wang.li", "desk-pass-1")
            await _until(agent, "window.ivrDesk.eventSource && window.ivrDesk.eventSource.readyState === 1", 10,
                         "the desk's event stream")
            await agent.click("#available")
            await _until(agent, "window.ivrDesk.presence === 'available'", 10, "available")
            await _login(sup, url, "/wall", "lead", "lead-pass-1")
            await _until(sup, "window.ivrWall.updates > 0", 10, "the wall")

            port = await _on_server(app, _caller(app.state.calls))
            call_id = port.info.call_id
            await _until(agent, "window.ivrDesk.presence === 'ringing' && !!window.ivrDesk.offer", 60, "ringing")
            await agent.click("#accept")
            bridges = app.state.calls.transfer_hook.bridges
            deadline = time.monotonic() + 40
            while not (call_id in bridges and bridges[call_id].relaying):
                assert time.monotonic() < deadline, "the caller was never connected to the agent"
                await asyncio.sleep(0.1)
            app.state.loop.call_soon_threadsafe(port.say, _caller_beeps(60.0))

            # nobody but a supervisor may join
            for user, pw in (("wang.li", "desk-pass-1"), ("root", "root-pass-1")):  # (a logout would end the desk's)
                async with httpx.AsyncClient(base_url=url, timeout=30) as other:
                    assert (await other.post("/api/login", json={"username": user, "password": pw})).is_success
                    r = await other.post(f"/api/wall/calls/{call_id}/supervise", json={"sdp": "v=0", "type": "offer"})
                    assert r.status_code == 403, (user, r.status_code)

            # listen: from the live-calls table
            button = f"#live tr[data-call=\"{call_id}\"] button.sv-join[data-mode=\"listen\"]"
            await _until(sup, f"!!document.querySelector('{button}')", 10, "the listen button")
            await sup.click(button)
            await _until(sup, "window.ivrSupervise.mode === 'listen' && window.ivrSupervise.maxLevel > 0.02", 20,
                         "the supervisor hearing the call")
            assert "监听中" in await sup.inner_text("#supervise")
            await asyncio.sleep(1.0)
            s, a, c = await _measure(sup, agent, port)
            assert _share(s, CALLER_HZ) > 0.2 and _share(s, AGENT_HZ) > 0.1, ("listen: supervisor", s)
            assert _share(a, SUP_HZ) < 0.05, ("listen: the agent must not hear the supervisor", a)
            assert c[0] > 50 and c[1] < 0.05 * c[0], ("listen: the caller must not hear the supervisor", c)

            # whisper: only the agent hears the supervisor
            await sup.click("#supervise button[data-mode=\"whisper\"]")
            await _until(sup, "window.ivrSupervise.mode === 'whisper'", 5, "whisper")
            await asyncio.sleep(1.0)
            s, a, c = await _measure(sup, agent, port)
            assert _share(a, SUP_HZ) > 0.5, ("whisper: the agent hears the supervisor", a)
            assert c[0] > 50 and c[1] < 0.05 * c[0], ("whisper: the caller must not hear the supervisor", c)
            assert _share(s, CALLER_HZ) > 0.2, ("whisper: the supervisor still hears the caller", s)
            lines = [x["text"] for x in await agent.evaluate("window.ivrDesk.lines")]
            assert any("lead正在耳语" in x for x in lines), lines  # the agent is told; a silent listen is not
            assert not any("监听" in x for x in lines)

            # barge: everyone hears everyone
            await sup.click("#supervise button[data-mode=\"barge\"]")
            await _until(sup, "window.ivrSupervise.mode === 'barge'", 5, "barge")
            await asyncio.sleep(1.0)
            s, a, c = await _measure(sup, agent, port)
            assert _share(a, SUP_HZ) > 0.5, ("barge: the agent hears the supervisor", a)
            assert c[0] > 50 and c[1] > 0.5 * c[0], ("barge: the caller hears the supervisor", c)
            assert _share(s, CALLER_HZ) > 0.2 and _share(s, AGENT_HZ) > 0.1, ("barge: supervisor", s)
            assert any("三方通话" in x["text"] for x in await agent.evaluate("window.ivrDesk.lines"))

            await sup.click("#sv-end")
            await _until(sup, "window.ivrSupervise.callId === null && window.ivrSupervise.closed === true", 5,
                         "left the call")
            # listening again when the caller hangs up: the leave is in the saved record all the same
            await _until(sup, f"!!document.querySelector('{button}')", 10, "the listen button again")
            await sup.click(button)
            await _until(sup, "window.ivrSupervise.mode === 'listen'", 20, "listening again")
            app.state.loop.call_soon_threadsafe(port.caller_hangup)
            await _until(agent, "window.ivrDesk.presence === 'wrap_up'", 15, "wrap-up")
            await _until(sup, "window.ivrSupervise.callId === null", 5, "the wall letting go of the ended call")
            await _on_server(app, port.close())
        deadline = time.monotonic() + 15
        while app.state.calls.active and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            rec = (await http.get(f"/api/calls/{call_id}", headers=record_headers(app.state.settings, call_id))).json()
        saved = RecordStore(settings.database_url).get(call_id)  # what was written, not the live object
    steps = [(e["supervisor"], e["event"], e["mode"], e.get("reason")) for e in saved.extra["supervision"]]
    assert steps == [("lead", "join", "listen", None), ("lead", "mode", "whisper", None),
                     ("lead", "mode", "barge", None), ("lead", "leave", "barge", "left"),
                     ("lead", "join", "listen", None), ("lead", "leave", "listen", "call_ended")], steps
    assert rec["extra"]["supervision"] == saved.extra["supervision"]
