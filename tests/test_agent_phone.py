"""An agent on a SIP desk phone: the caller (an aiortc WebRTC client) asks for a human, the agent accepts on the
desktop API with ``{"via": "sip"}``, the bot dials the desk phone through its SIP gateway (the second leg) and
bridges it. The desk phone is real sipp acting as a UAS that echoes RTP (``-rtp_echo``): the caller hears its own
voice come back through the agent's leg. A PBX with real desk phones cannot exist here; sipp plays the phone."""

from __future__ import annotations

import asyncio
import time

import httpx
import numpy as np
import pytest
from browser.server import serve_in_thread

from ivr.audio.frames import AudioFrame
from ivr.config import load_settings
from ivr.services.agents import AccountStore
from ivr.services.migrate import ensure_schema
from ivr.telephony.webrtc.client import WebRtcClient
from tests.sip.peers import free_port

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow, pytest.mark.live]  # the caller hears 1 s of the echo within 3 s


def _tone(seconds: float, hz: float = 600.0, rate: int = 16000) -> AudioFrame:
    t = np.arange(int(seconds * rate)) / rate
    return AudioFrame((np.sin(2 * np.pi * hz * t) * 0.3 * 32767).astype(np.int16).tobytes(), rate)


async def _until(fn, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await fn()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_agent_takes_the_call_on_a_sip_desk_phone(tmp_path):
    phone_port, phone_media = free_port(), free_port(even=True)
    settings = load_settings({"data_dir": str(tmp_path / "data"), "tts_speed": 450, "agent_ring_timeout_s": 30.0})
    ensure_schema(settings.database_url)
    AccountStore(settings.database_url).add("desk9", password="desk-pass-9",
                                            sip_uri=f"sip:1009@127.0.0.1:{phone_port}")
    phone = await asyncio.create_subprocess_exec(
        "sipp", "-sn", "uas", "-rtp_echo", "-m", "1", "-p", str(phone_port), "-i", "127.0.0.1",
        "-mp", str(phone_media), "-nostdin", "-timeout", "120s", cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    client = WebRtcClient()
    try:
        with serve_in_thread(settings, sip=True) as (url, app):
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                assert (await http.post("/api/login", json={"username": "desk9", "password": "desk-pass-9"})
                        ).status_code == 200
                assert (await http.post("/api/agent/presence", json={"state": "available"})).status_code == 200
                await client.call(url)
                await client.wait_for(lambda: client.bot_lines(), 30, "greeting")
                await asyncio.sleep(1.0)
                client.press("0")  # a human, please

                async def offered():
                    return (await http.get("/api/agent/state")).json()["offer"]

                try:
                    offer = await _until(offered, 30, "the offer on the desktop")
                except AssertionError:
                    raise AssertionError(f"no offer; bot said {client.bot_lines()}; "
                                         f"desk {(await http.get('/api/agent/state')).json()}") from None
                r = await http.post(f"/api/agent/offers/{offer['offer_id']}/accept", json={"via": "sip"})
                assert r.status_code == 200 and r.json() == {"call_id": client.call_id, "via": "sip"}, r.text
                await client.wait_for(lambda: any("已为您接通" in x for x in client.bot_lines()), 40, "connected")
                await asyncio.sleep(3.5)  # the connected line has been played
                quiet_from = time.monotonic()
                await asyncio.sleep(1.5)
                before = len(client.voiced(-40, after=quiet_from))
                spoke_at = time.monotonic()
                client.say(_tone(2.0))
                await asyncio.sleep(3.0)
                echoed = len(client.voiced(-40, after=spoke_at))
                assert before <= 5, f"the line was not quiet before the caller spoke ({before} loud frames)"
                assert echoed >= 50, f"the caller did not hear the desk phone's leg ({echoed} loud frames)"
                state = (await http.get("/api/agent/state")).json()
                assert state["agent"]["presence"] == "busy" and state["call"]["context"]["reason"] == "human_request"
                await client.hangup()

                async def wrapping():
                    return (await http.get("/api/agent/state")).json()["agent"]["presence"] == "wrap_up"

                await _until(wrapping, 15, "wrap-up")
            out, _ = await asyncio.wait_for(phone.communicate(), 30)  # the bot's BYE ended sipp's one call
            screen = out.decode("utf-8", "replace")
            assert phone.returncode == 0, screen[-2000:]
            rec = app.state.calls.records[client.call_id]
        assert rec.outcome == "transferred" and rec.extra["agents"] == ["desk9"]
    finally:
        await client.close()
        if phone.returncode is None:
            phone.kill()
            await phone.wait()
