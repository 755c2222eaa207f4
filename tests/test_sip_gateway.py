"""SIP gateway against real peers on loopback: sipp (UAC scenarios, RFC 4733 pcaps), tshark capture of the
bot's RTP, raw malformed datagrams. The call handler is tests/sip/bot.py (espeak-ng greeting, recorder)."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import numpy as np
import pytest

from ivr.audio import g711, resample
from ivr.config import Settings
from ivr.telephony.sip import SipGateway
from tests.sip.bot import Bot, espeak_wav
from tests.sip.peers import RtpCapture, free_port, run_sipp

GREETING = "您好，欢迎致电客服中心。查询订单请按一，人工服务请按零。"


@pytest.fixture
def bot(tmp_path):
    return Bot.from_text(GREETING, tmp_path)


@contextlib.asynccontextmanager
async def running(bot, **settings):
    gw = SipGateway(Settings(host="127.0.0.1", sip_port=0, **{k: v for k, v in settings.items() if k != "capacity"}),
                    bot, capacity=settings.get("capacity"))
    await gw.start()
    try:
        yield gw
    finally:
        await asyncio.sleep(0.3)
        assert gw.open_calls == 0, f"calls leaked: {gw.calls} ringing={gw._ringing}"
        await gw.stop()


def loud(frame, floor_dbfs=-35.0) -> bool:
    """True when at least 10% of 20 ms windows are above ``floor_dbfs`` (speech, not silence or hiss)."""
    x = frame.to_float()
    n = frame.sample_rate // 50
    if len(x) < n:
        return False
    w = x[: len(x) // n * n].reshape(-1, n)
    db = 20 * np.log10(np.sqrt((w.astype(np.float64) ** 2).mean(axis=1)) + 1e-9)
    return float((db > floor_dbfs).mean()) >= 0.1


async def test_sipp_builtin_uac_completes(bot, tmp_path):
    async with running(bot) as gw:
        res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac", workdir=tmp_path, timeout=30)
        assert res.rc == 0 and res.successful == 1, res
        await asyncio.wait_for(bot.done.wait(), 5)
    assert bot.calls[0].hangup.by == "caller"
    assert bot.calls[0].port.info.channel == "sip" and bot.calls[0].port.info.sample_rate == 16000


async def test_alaw_call_audio_both_ways(bot, tmp_path):
    media = free_port(even=True)
    async with running(bot) as gw:
        async with RtpCapture(media, tmp_path / "bot.pcap") as cap:
            res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_alaw.xml", workdir=tmp_path,
                                 media_port=media, timeout=30)
        assert res.rc == 0 and res.successful == 1, res
    call = bot.calls[0]
    assert call.port.info.extra["codec"] == "PCMA"
    # the caller's A-law speech reached the bot, decoded and resampled to 16 kHz
    assert call.inbound_audio().duration > 5 and loud(call.inbound_audio())
    # the bot's greeting reached sipp as A-law RTP, 20 ms per packet, and is speech, not silence
    pkts = cap.packets()
    alaw = [p for pt, p in pkts if pt == 8]
    assert len(alaw) > 0.8 * bot.greeting.duration * 50, len(alaw)
    assert {len(p) for p in alaw} == {160}
    assert loud(cap.audio())


async def test_ulaw_call_with_rtp_stream(bot, tmp_path):
    caller = resample(bot.__class__.from_text("我想查一下我的订单。", tmp_path).greeting, 8000)
    (tmp_path / "caller.ulaw").write_bytes(g711.ulaw_encode(caller))
    media = free_port(even=True)
    async with running(bot) as gw:
        async with RtpCapture(media, tmp_path / "bot.pcap") as cap:
            res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_ulaw.xml", workdir=tmp_path,
                                 media_port=media, timeout=30)
        assert res.rc == 0 and res.successful == 1, res
    call = bot.calls[0]
    assert call.port.info.extra["codec"] == "PCMU"
    heard = call.inbound_audio()
    assert heard.duration > 0.8 * caller.duration and loud(heard)
    ulaw = [p for pt, p in cap.packets() if pt == 0]
    assert len(ulaw) > 0.8 * bot.greeting.duration * 50 and loud(cap.audio())


async def test_bot_hangs_up_with_bye(bot, tmp_path):
    bot.hangup_after_greeting = True
    async with running(bot) as gw:
        res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_wait_bye.xml", workdir=tmp_path, timeout=30)
        assert res.rc == 0 and res.successful == 1, res
        await asyncio.wait_for(bot.done.wait(), 5)
    assert bot.calls[0].greeting_sent and bot.calls[0].hangup.by == "bot"


async def test_rfc4733_dtmf_digits(bot, tmp_path):
    async with running(bot) as gw:
        res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_dtmf.xml", workdir=tmp_path, timeout=30)
        assert res.rc == 0 and res.successful == 1, res
    assert bot.calls[0].digits == "12024#"


async def test_sip_info_dtmf(bot, tmp_path):
    async with running(bot) as gw:
        res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_info.xml", workdir=tmp_path, timeout=30)
        assert res.rc == 0 and res.successful == 1, res
    assert bot.calls[0].digits == "5#"


async def test_cancel_before_answer(bot, tmp_path):
    async with running(bot, sip_ring_ms=5000) as gw:
        res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_cancel.xml", workdir=tmp_path, timeout=20)
        assert res.rc == 0 and res.successful == 1, res
        assert gw.counters["cancelled"] == 1 and gw.counters["answered"] == 0
    assert bot.calls == []  # the session never saw a call that was never answered


@pytest.mark.live_light  # the silence in the RTP is the hold's length (1.2-2.5 s for 1.5 s)
async def test_hold_and_resume_by_reinvite(bot, tmp_path):
    media = free_port(even=True)
    async with running(bot) as gw:
        async with RtpCapture(media, tmp_path / "bot.pcap") as cap:
            res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_hold.xml", workdir=tmp_path,
                                 media_port=media, timeout=30)
        assert res.rc == 0 and res.successful == 1, res  # the scenario checks recvonly, then sendrecv answers
    assert bot.calls[0].port.info.extra.get("on_hold") is False
    # the bot's RTP stops while held (sendonly for 1.5 s) and comes back on resume
    times = [t for t, pt, _ in cap.timed_packets() if pt == 8]
    gap, at = max((b - a, i) for i, (a, b) in enumerate(zip(times, times[1:], strict=False)))
    assert 1.2 < gap < 2.5, f"longest silence in the bot's RTP: {gap:.2f} s (hold lasted 1.5 s)"
    assert at > 25 and len(times) - at > 25, (at, len(times))  # RTP before the hold and after the resume


async def test_at_capacity_503_with_retry_after(bot, tmp_path):
    async with running(bot, capacity=lambda: False, sip_retry_after_s=42) as gw:
        res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_refused.xml", workdir=tmp_path, timeout=20)
        assert res.rc == 0 and res.successful == 1, res
        assert gw.counters["refused"] == 1
    assert bot.calls == []


async def test_sipp_over_tcp(bot, tmp_path):
    async with running(bot) as gw:
        res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac", workdir=tmp_path, timeout=30,
                             extra=["-t", "t1"])
        assert res.rc == 0 and res.successful == 1, res
    assert bot.calls[0].port.info.extra["transport"] == "tcp"


# --- malformed input ------------------------------------------------------------------------------------------

def _request(method="INVITE", *, call_id="m1", cseq=None, body="", extra="", drop=(), version="SIP/2.0",
             ctype="application/sdp", port=0):
    headers = {
        "Via": f"SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{call_id}",
        "From": f"<sip:a@127.0.0.1:{port}>;tag=t-{call_id}",
        "To": "<sip:bot@127.0.0.1>",
        "Call-ID": call_id,
        "CSeq": cseq or f"1 {method}",
        "Contact": f"<sip:a@127.0.0.1:{port}>",
        "Max-Forwards": "70",
    }
    if body:
        headers["Content-Type"] = ctype
    lines = [f"{method} sip:bot@127.0.0.1 {version}"] + [f"{k}: {v}" for k, v in headers.items() if k not in drop]
    if extra:
        lines.append(extra)
    lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio 40000 RTP/AVP {fmt}\r\n{attrs}")


async def test_malformed_burst_gets_4xx_and_leaks_nothing(bot, tmp_path):
    async with running(bot) as gw:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        me = sock.getsockname()[1]
        loop = asyncio.get_running_loop()

        async def ask(data: bytes) -> int | None:
            await loop.sock_sendto(sock, data, ("127.0.0.1", gw.port))
            try:
                while True:
                    reply = (await asyncio.wait_for(loop.sock_recv(sock, 65536), 1.0)).decode()
                    code = int(reply.split()[1])
                    if code >= 200:
                        return code
            except TimeoutError:
                return None

        cases = [
            (b"\x00\xffgarbage\r\n\r\n", None),  # noise: dropped, never answered
            (b"HELLO WORLD\r\n\r\n", None),
            (_request(call_id="c1", drop=("Call-ID",), port=me), 400),
            (_request(call_id="c2", cseq="x INVITE", port=me), 400),
            (_request(call_id="c3", extra="Subject: " + "x" * 6000, port=me), 513),
            (_request(call_id="c4", version="SIP/3.0", port=me), 505),
            (_request("FROB", call_id="c5", port=me), 405),
            (_request(call_id="c6", extra="Require: frobnication", body=SDP.format(fmt="0", attrs=""), port=me), 420),
            (_request(call_id="c7", body="this is not sdp", port=me), 400),
            (_request(call_id="c8", body=SDP.format(fmt="18", attrs="a=rtpmap:18 G729/8000\r\n"), port=me), 488),
            (_request(call_id="c9", body="<xml/>", ctype="application/xml", port=me), 415),
            (_request(call_id="c10", port=me), 488),  # INVITE without an offer
            (_request("BYE", call_id="c11", port=me), 481),  # BYE for no dialog
            (_request("OPTIONS", call_id="c12", port=me), 200),  # PBX keep-alive
            (_request(call_id="c13", cseq="1 BYE", body=SDP.format(fmt="0", attrs=""), port=me), 400),
            # no Contact: no remote target for the dialog (RFC 3261 8.1.1.8), the bot could never send its BYE
            (_request(call_id="c14", drop=("Contact",), body=SDP.format(fmt="0", attrs=""), port=me), 400),
        ]
        for _round in range(3):  # a burst, repeated: the gateway must not accumulate state
            for data, want in cases:
                got = await ask(data)
                assert got == want, (data[:60], got, want)
        sock.close()
        assert gw.open_calls == 0 and not gw._uas[0]._calls
        # and it still answers a proper call
        res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac", workdir=tmp_path, timeout=30)
        assert res.rc == 0 and res.successful == 1, res


async def test_draining_gateway_fails_health_probes_and_new_calls(bot):
    """SIGTERM drains: a proxy's OPTIONS probe gets 503 (Kamailio's dispatcher then sends calls elsewhere), and so
    does a new INVITE; before draining the probe gets 200."""
    async with running(bot) as gw:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        me = sock.getsockname()[1]
        loop = asyncio.get_running_loop()

        async def ask(data: bytes) -> str:
            await loop.sock_sendto(sock, data, ("127.0.0.1", gw.port))
            while True:
                reply = (await asyncio.wait_for(loop.sock_recv(sock, 65536), 2.0)).decode()
                if int(reply.split()[1]) >= 200:
                    return reply

        assert (await ask(_request("OPTIONS", call_id="p1", port=me))).split()[1] == "200"
        gw.stop_accepting()
        probe = await ask(_request("OPTIONS", call_id="p2", port=me))
        assert probe.split()[1] == "503" and "Retry-After:" in probe, probe
        invite = await ask(_request(call_id="p3", body=SDP.format(fmt="0", attrs=""), port=me))
        assert invite.split()[1] == "503", invite
        sock.close()


async def test_allow_list_refuses_other_sources(bot, tmp_path):
    async with running(bot, sip_allow_from="10.0.0.0/8") as gw:
        res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac", workdir=tmp_path, timeout=10)
        assert res.successful != 1 and "403" in res.errors + res.stdout, res
    assert bot.calls == []


async def test_espeak_greeting_is_real_speech(tmp_path):
    """Guard for the fixtures above: the greeting is real espeak-ng Mandarin, seconds long and loud."""
    from ivr.audio.files import read_audio

    g = read_audio(espeak_wav(GREETING, tmp_path / "g.wav"), 16000)
    assert g.duration > 2 and loud(g)
