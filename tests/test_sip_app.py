"""Acceptance: SIP callers reach the REAL service, not a stand-in.

`create_app` runs under uvicorn with a SIP port (tests/browser/server.py ``serve_in_thread(sip=True)``), so each
call goes SipGateway -> CallManager.reserve/start_call -> CallSession -> the real dialogue over the seeded SQLite
demo shop, with espeak-ng speaking. No Mandarin speech model can be installed here, so the service runs in keypad
(DTMF) mode, which is exactly what a keypad caller on a PBX gets. The far end is real sipp on loopback; the bot's
RTP is captured with tshark and decoded. A carrier trunk cannot exist in this sandbox: sipp plays the trunk/PBX
side, which speaks the same SIP and RTP (the difference that matters in production, NAT and public addresses, is
covered by ``public_ip`` and symmetric RTP, not by these tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import pytest
from browser.server import serve_in_thread

from ivr.audio import g711, resample
from ivr.config import load_settings
from ivr.web.callaccess import record_headers
from tests.sip.bot import Bot
from tests.sip.peers import RtpCapture, free_port, run_sipp
from tests.test_sip_gateway import loud


def _settings(tmp_path, **kw):
    return load_settings({"data_dir": str(tmp_path / "data"), **kw})


def _sip_records(app) -> list:
    return [r for r in app.state.calls.records.values() if r.channel == "sip"]


def _record_json(url: str, call_id: str, settings) -> dict:
    r = httpx.get(f"{url}/api/calls/{call_id}", timeout=10, headers=record_headers(settings, call_id))
    assert r.status_code == 200, r.text
    return r.json()


async def _wait_records(app, n: int, timeout: float = 15.0) -> list:
    for _ in range(int(timeout * 10)):
        recs = _sip_records(app)
        if len(recs) >= n:
            return recs
        await asyncio.sleep(0.1)
    raise AssertionError(f"{n} SIP call record(s) expected, got {len(_sip_records(app))}")


@pytest.mark.slow
@pytest.mark.live_light  # sipp keys on a fixed clock: a starved bot has not finished its reply when sipp says BYE
async def test_rfc4733_keypad_call_drives_the_real_dialogue(tmp_path):
    """Menu key 1, order 100000000002#, phone tail 8000 (demo customer 张伟, 13800138000), all as RFC 4733
    telephone-events from sipp: the call record shows the three keypad turns and the order-status reply."""
    media = free_port(even=True)
    with serve_in_thread(_settings(tmp_path), sip=True) as (url, app):
        gw = app.state.sip
        health = httpx.get(f"{url}/health", timeout=5).json()
        assert health["sip"]["enabled"] and health["sip"]["port"] == gw.port and "udp" in health["sip"]["transports"]
        async with RtpCapture(media, tmp_path / "bot.pcap") as cap:
            res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_order_status.xml", workdir=tmp_path,
                                 media_port=media, timeout=60)
        assert res.rc == 0 and res.successful == 1, res
        (rec,) = await _wait_records(app, 1)
        data = _record_json(url, rec.call_id, app.state.settings)
        assert gw.open_calls == 0 and app.state.calls.active == 0
    assert data["channel"] == "sip" and data["asr_mode"] == "dtmf"
    assert data["ended_by"] == "caller" and data["outcome"] == "self_served", data  # sipp's BYE closed it
    keyed = [(t["kind"], t["caller_text"]) for t in data["turns"] if t["kind"] == "dtmf"]
    assert keyed == [("dtmf", "1"), ("dtmf", "100000000002#"), ("dtmf", "****")], data["turns"]  # tail masked
    replies = {t["caller_text"]: t["bot_text"] for t in data["turns"] if t["kind"] == "dtmf"}
    assert "订单号" in replies["1"]
    assert "后四位" in replies["100000000002#"] and "签收" not in replies["100000000002#"]
    assert "核实通过" in replies["****"] and "签收" in replies["****"], replies["****"]
    # what sipp heard: A-law RTP, 20 ms packets, speech rather than silence
    alaw = [p for pt, p in cap.packets() if pt == 8]
    assert len(alaw) > 500 and {len(p) for p in alaw} == {160}
    assert loud(cap.audio())


def _voiced_seconds(cap: RtpCapture, pt: int, floor_dbfs: float = -35.0) -> float:
    """Seconds of the captured bot stream (packets of payload type ``pt``) louder than ``floor_dbfs`` (the
    line between prompts is digital silence, about -72 dBFS after G.711)."""
    codec = "PCMA" if pt == 8 else "PCMU"
    frames = [g711.decode(codec, p) for t, p in cap.packets() if t == pt]
    return sum(0.02 for f in frames if f.rms_dbfs() > floor_dbfs)


@pytest.mark.live_light  # sipp's scenario runs on a fixed clock; the bot's RTP must flow all along (> 6 s of it)
@pytest.mark.parametrize("codec", ["PCMA", "PCMU"])
async def test_greeting_comes_back_as_speech_in_both_laws(tmp_path, codec):
    """The real greeting comes back as G.711 RTP of the offered law and is speech; the caller starts talking
    (A-law pcap / mu-law rtp_stream) 3 s in, and the real session's VAD hears it and stops the greeting
    (barge-in): audio crossed both ways. Then sipp hangs up with BYE."""
    scenario = "uac_alaw_late.xml" if codec == "PCMA" else "uac_ulaw_late.xml"
    if codec == "PCMU":
        caller = resample(Bot.from_text("我想查一下我的订单。", tmp_path).greeting, 8000)
        (tmp_path / "caller.ulaw").write_bytes(g711.ulaw_encode(caller))
    media = free_port(even=True)
    with serve_in_thread(_settings(tmp_path), sip=True) as (url, app):
        gw = app.state.sip
        async with RtpCapture(media, tmp_path / "bot.pcap") as cap:
            res = await run_sipp(f"127.0.0.1:{gw.port}", scenario=scenario, workdir=tmp_path, media_port=media,
                                 timeout=40)
        assert res.rc == 0 and res.successful == 1, res
        (rec,) = await _wait_records(app, 1)
        data = _record_json(url, rec.call_id, app.state.settings)
        assert gw.open_calls == 0 and app.state.calls.active == 0
    pt = 8 if codec == "PCMA" else 0
    pkts = [p for t, p in cap.packets() if t == pt]
    assert len(pkts) > 300 and {len(p) for p in pkts} == {160}, len(pkts)  # > 6 s of 20 ms packets, continuous
    assert not [t for t, _ in cap.packets() if t not in (pt, 101, 13)], "the bot switched codec"
    assert _voiced_seconds(cap, pt) > 1.5, "the greeting did not come back as speech"
    greeting = data["turns"][0]
    assert greeting["kind"] == "start" and "您好" in greeting["bot_text"]
    assert greeting["barged_in"] is True, "the caller's G.711 speech never reached the session's VAD"
    assert data["ended_by"] == "caller" and data["end_reason"] == "caller_hangup", data


async def test_shutdown_says_goodbye_and_the_bot_sends_bye(tmp_path):
    """`ivr serve` stopping with a SIP caller on the line: new INVITEs get 503, the caller hears the goodbye,
    then the bot hangs up with BYE (sipp's scenario waits for it and answers 200)."""
    media = free_port(even=True)
    server = contextlib.ExitStack()
    url, app = server.enter_context(serve_in_thread(_settings(tmp_path), sip=True, shutdown_grace_s=15))
    try:
        gw = app.state.sip
        async with RtpCapture(media, tmp_path / "bot.pcap") as cap:
            caller = asyncio.create_task(run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_wait_bye.xml",
                                                  workdir=tmp_path, media_port=media, timeout=60))
            for _ in range(100):
                if app.state.calls.sessions:
                    break
                await asyncio.sleep(0.1)
            assert app.state.calls.sessions, "the call never reached the call manager"
            await asyncio.sleep(4.0)  # into the greeting (about 25 s long)
            t_stop = time.time()
            stopping = asyncio.create_task(asyncio.to_thread(server.close))
            res = await caller
            t_bye = time.time()
            await stopping
    finally:
        server.close()
    assert res.rc == 0 and res.successful == 1, res  # sipp got the bot's BYE and answered it
    assert t_bye - t_stop < 15, "the greeting played on instead of the goodbye"
    (rec,) = _sip_records(app)
    assert rec.end_reason == "shutdown" and rec.ended_by in ("bot", "system"), (rec.ended_by, rec.end_reason)
    assert gw.open_calls == 0 and not gw._uas
    # the caller heard speech after the shutdown began: the greeting is cut, the goodbye is spoken
    after = [g711.decode("PCMU", p) for t, pt, p in cap.timed_packets() if pt == 0 and t > t_stop + 0.3]
    voiced = sum(0.02 for f in after if f.rms_dbfs() > -35)
    assert voiced > 0.8, f"no goodbye: {voiced:.2f} s of speech after shutdown began"


async def test_beyond_capacity_is_503_with_retry_after(tmp_path):
    """max_calls=1 on the real CallManager: a second INVITE while one call is up gets 503 + Retry-After
    (reserve() raised CallRefused); the first call is unaffected."""
    with serve_in_thread(_settings(tmp_path, max_calls=1, sip_retry_after_s=17), sip=True) as (url, app):
        gw = app.state.sip
        first = asyncio.create_task(run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_alaw.xml",
                                             workdir=tmp_path / "a", timeout=40))
        for _ in range(100):
            if app.state.calls.active:
                break
            await asyncio.sleep(0.1)
        assert app.state.calls.active == 1
        second = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_refused.xml", workdir=tmp_path / "b",
                                timeout=20)
        assert second.rc == 0 and second.successful == 1, second
        res = await first
        assert res.rc == 0 and res.successful == 1, res
        await _wait_records(app, 1)
        assert gw.counters["refused"] == 1 and gw.counters["answered"] == 1
        assert app.state.calls.active == 0 and not gw._slots


async def test_refused_session_interval_does_not_keep_a_call_slot(tmp_path):
    """max_calls=1 on the real CallManager: an INVITE admitted (slot reserved) and then refused by the SIP layer
    with 422 (Session-Expires below Min-SE) must give its slot back; the next caller is answered, not 503."""
    with serve_in_thread(_settings(tmp_path, max_calls=1), sip=True) as (url, app):
        gw = app.state.sip
        for i in range(2):
            res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_timer_too_small.xml",
                                 workdir=tmp_path / f"t{i}", timeout=15)
            assert res.rc == 0 and res.successful == 1, res
        for _ in range(100):  # the server thread handles sipp's ACK of the 422 after sipp has exited
            if not gw._slots and app.state.calls.active == 0:
                break
            await asyncio.sleep(0.05)
        assert not gw._slots and app.state.calls.active == 0
        res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac", workdir=tmp_path / "ok", timeout=30)
        assert res.rc == 0 and res.successful == 1, res
        await _wait_records(app, 1)
        assert gw.counters["answered"] == 1
