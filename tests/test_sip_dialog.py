"""Mid-call SIP behaviour against real sipp on loopback: re-INVITE codec change (PCMU -> PCMA) and a refused one
(488, call kept), a re-INVITE with unparsable SDP (400, call kept), RFC 4028 session timers (the gateway refreshes
with UPDATE; a caller that stops refreshing is hung up; 422 below Min-SE), OPTIONS keep-alive, symmetric RTP, RTCP
sender reports, and blind transfer by REFER with NOTIFY progress (success and a busy target).

The bot's RTP is captured with tshark (tests/sip/peers.py RtpCapture) and decoded. A carrier trunk cannot exist in
this sandbox: sipp plays the trunk/PBX side, which speaks the same SIP, SDP and RTP."""

from __future__ import annotations

import asyncio

import pytest

from ivr.audio import g711, resample
from ivr.audio.frames import AudioFrame
from tests.sip.bot import Bot
from tests.sip.peers import RtpCapture, free_port, run_sipp
from tests.test_sip_gateway import GREETING, loud, running

CALLER_TEXT = "我想查一下我的订单。"


@pytest.fixture
def bot(tmp_path):
    return Bot.from_text(GREETING, tmp_path)


def _caller_8k(tmp_path):
    (tmp_path / "caller").mkdir(exist_ok=True)
    return resample(Bot.from_text(CALLER_TEXT, tmp_path / "caller").greeting, 8000)


def _lower_min_se(gw, seconds: int = 2) -> None:
    """RFC 4028's Min-SE floor is 90 s (aiosipua's default, kept in production): lowered for these tests so a
    4 s session interval can be negotiated and refreshes/expiry happen in seconds rather than minutes."""
    for ua in gw._uas:
        ua.min_se = seconds


# --- re-INVITE: codec change, unsupported codec, bad SDP -------------------------------------------------------

@pytest.mark.realtime  # the bot's RTP never stops for 300 ms
async def test_reinvite_changes_codec_then_unsupported_offer_gets_488(bot, tmp_path):
    """PCMU call; re-INVITE offering only PCMA: the 200 answers PCMA (sipp checks the m-line), the bot's RTP
    switches to payload type 8 and is still the greeting (speech), and the caller's A-law reaches the bot. A
    further re-INVITE offering only G.729 gets 488; the call stays up in PCMA (sipp's BYE gets 200)."""
    caller = _caller_8k(tmp_path)
    (tmp_path / "caller.alaw").write_bytes(g711.alaw_encode(caller))
    media = free_port(even=True)
    async with running(bot) as gw:
        async with RtpCapture(media, tmp_path / "bot.pcap") as cap:
            res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_codec_change.xml", workdir=tmp_path,
                                 media_port=media, timeout=40)
        assert res.rc == 0 and res.successful == 1, res
        assert gw.counters["answered"] == 1
    call = bot.calls[0]
    assert call.hangup is not None and call.hangup.by == "caller", call.hangup  # the 488 did not end the call
    assert call.port.info.extra["codec"] == "PCMA"

    pkts = [(t, pt, p) for t, pt, p in cap.timed_packets() if pt in (0, 8)]
    first_alaw = next((i for i, (_, pt, _) in enumerate(pkts) if pt == 8), None)
    assert first_alaw is not None, f"the bot never sent PCMA: {sorted({pt for _, pt, _ in pkts})}"
    before, after = pkts[:first_alaw], pkts[first_alaw:]
    assert len(before) > 40 and {pt for _, pt, _ in before} == {0}, len(before)  # ~1.5 s of PCMU first
    assert sum(1 for _, pt, _ in after if pt == 0) <= 2, "PCMU went on after the switch"  # one straggler at most
    alaw = [(t, p) for t, pt, p in after if pt == 8]
    assert {len(p) for _, p in alaw} == {160}
    assert len(alaw) > 200, len(alaw)  # 2.5 s before the G.729 offer + 2.5 s after it, 20 ms packets
    gaps = [b[0] - a[0] for a, b in zip(alaw, alaw[1:], strict=False)]
    assert max(gaps) < 0.3, f"the bot's PCMA stopped for {max(gaps):.2f} s (the 488 must not touch the media)"
    heard = AudioFrame(b"".join(g711.decode("PCMA", p).pcm for _, p in alaw), 8000)
    assert loud(heard), "the bot's PCMA after the switch is not the greeting"
    assert loud(AudioFrame(b"".join(g711.decode("PCMU", p).pcm for _, _, p in before), 8000))
    # the caller's A-law, sent only after the switch, reached the bot through the new stream
    inbound = call.inbound_audio()
    assert inbound.duration > 0.8 * caller.duration and loud(inbound), inbound.duration


async def test_reinvite_with_unparsable_sdp_gets_400_and_the_call_stays(bot, tmp_path):
    async with running(bot) as gw:
        res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_reinvite_bad_sdp.xml", workdir=tmp_path,
                             timeout=20)
        assert res.rc == 0 and res.successful == 1, res
    call = bot.calls[0]
    assert call.hangup.by == "caller" and call.port.info.extra["codec"] == "PCMU"


# --- RFC 4028 session timers -----------------------------------------------------------------------------------

async def test_session_timer_gateway_refreshes_with_update(bot, tmp_path):
    """Offered Session-Expires 4 s, refresher=uas: the 200 OK carries it with Require: timer, and the gateway
    sends a refreshing UPDATE every 2 s (sipp waits for two) until sipp hangs up."""
    async with running(bot) as gw:
        _lower_min_se(gw)
        res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_timer_uas_refresh.xml", workdir=tmp_path,
                             timeout=30)
        assert res.rc == 0 and res.successful == 1, res
    assert bot.calls[0].hangup.by == "caller"


async def test_session_timer_expires_when_the_caller_stops_refreshing(bot, tmp_path):
    """Offered Session-Expires 4 s, refresher=uac: one refreshing re-INVITE after 1.5 s re-arms the watchdog,
    then silence; the gateway declares the session dead (RFC 4028 §10: 4 - 4/3 s after the last refresh) and
    sends BYE, which sipp answers. The call ends as system/session_expired."""
    async with running(bot) as gw:
        _lower_min_se(gw)
        res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_timer_uac_refresh.xml", workdir=tmp_path,
                             timeout=30)
        assert res.rc == 0 and res.successful == 1, res
        await asyncio.wait_for(bot.done.wait(), 5)
    call = bot.calls[0]
    assert (call.hangup.by, call.hangup.reason) == ("system", "session_expired"), call.hangup
    lasted = call.hangup.at - call.port.started
    assert 3.6 < lasted < 8, f"expired after {lasted:.2f} s (without the refresh it would be 2.7 s)"


async def test_session_interval_below_min_se_gets_422(bot, tmp_path):
    async with running(bot) as gw:  # production Min-SE: 90 s
        res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_timer_too_small.xml", workdir=tmp_path,
                             timeout=15)
        assert res.rc == 0 and res.successful == 1, res  # sipp checked 422 with Min-SE: 90
        assert gw.counters["answered"] == 0 and not gw._uas[0]._calls
    assert bot.calls == []


# --- OPTIONS keep-alive ----------------------------------------------------------------------------------------

async def test_options_keepalive_gets_200_with_allow(bot, tmp_path):
    async with running(bot) as gw:
        for transport in ([], ["-t", "t1"]):  # UDP, then TCP
            res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_options.xml", workdir=tmp_path, timeout=15,
                                 extra=transport)
            assert res.rc == 0 and res.successful == 1, res
        assert gw.open_calls == 0 and not gw._uas[0]._calls and not gw._uas[-1]._calls
    assert bot.calls == []


# --- media: symmetric RTP, RTCP ------------------------------------------------------------------------------

async def test_symmetric_rtp_answers_where_packets_come_from(bot, tmp_path):
    """The caller's SDP names [media_port+4], where nothing listens, but sipp streams from [media_port] (as a
    phone behind NAT does): once its packets arrive the bot's RTP goes to [media_port] and carries the greeting."""
    (tmp_path / "caller.ulaw").write_bytes(g711.ulaw_encode(_caller_8k(tmp_path)))
    media = free_port(even=True)
    async with running(bot) as gw:
        async with RtpCapture(media, tmp_path / "bot.pcap") as cap:
            res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_symmetric.xml", workdir=tmp_path,
                                 media_port=media, timeout=30)
        assert res.rc == 0 and res.successful == 1, res
    call = bot.calls[0]
    assert call.port.stream.remote == ("127.0.0.1", media), call.port.stream.remote
    ulaw = [p for pt, p in cap.packets() if pt == 0]
    assert len(ulaw) > 0.8 * bot.greeting.duration * 50, len(ulaw)
    assert loud(cap.audio())


async def test_rtcp_sender_reports_and_bye(bot, tmp_path):
    """RTCP goes to the RTP port + 1: at least one sender report during an 8.5 s call, from the same SSRC as the
    bot's RTP and counting the packets it sent, and an RTCP BYE when the call ends."""
    (tmp_path / "caller.ulaw").write_bytes(g711.ulaw_encode(_caller_8k(tmp_path)))
    media = free_port(even=True)
    async with running(bot) as gw:
        async with RtpCapture(media, tmp_path / "rtp.pcap") as rtp, \
                RtpCapture(media + 1, tmp_path / "rtcp.pcap") as rtcp:
            res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_ulaw.xml", workdir=tmp_path,
                                 media_port=media, timeout=30)
        assert res.rc == 0 and res.successful == 1, res
    reports = rtcp.rtcp_packets()
    srs = [r for r in reports if 200 in r.types]
    assert srs, f"no RTCP sender report: {reports}"
    assert {r.ssrc for r in srs} <= rtp.ssrcs(), (srs, rtp.ssrcs())
    assert max(r.packet_count for r in srs) > 100, srs  # sent after at least 2.5 s of 20 ms packets
    assert all(202 in r.types for r in srs)  # compound: SR + SDES (CNAME)
    assert any(203 in r.types for r in reports), f"no RTCP BYE at the end: {reports}"


# --- blind transfer: REFER with NOTIFY progress ----------------------------------------------------------------

AGENT = "sip:agent@127.0.0.1:5999"


async def test_blind_transfer_follows_notify_to_success(tmp_path):
    """REFER to the agent; sipp (the transferee) answers 202 and reports 100, 180, 200 by NOTIFY sipfrag: the
    provisional ones keep the bot waiting, the 200 makes the transfer succeed and the bot leaves with BYE."""
    bot = Bot.from_text("请稍候，正在为您转接。", tmp_path, transfer_to=AGENT)
    async with running(bot) as gw:
        res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_refer_ok.xml", workdir=tmp_path, timeout=30)
        assert res.rc == 0 and res.successful == 1, res
        await asyncio.wait_for(bot.done.wait(), 5)
    call = bot.calls[0]
    assert call.transfer_result is True and call.port.transferred_to == AGENT
    assert call.hangup.by == "bot"


async def test_blind_transfer_to_a_busy_target_keeps_the_call(tmp_path):
    """The final NOTIFY says 486 Busy Here: transfer() returns False, the bot stays on the line (the session can
    recover), and sipp's own BYE afterwards is answered."""
    bot = Bot.from_text("请稍候，正在为您转接。", tmp_path, transfer_to=AGENT)
    async with running(bot) as gw:
        res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_refer_fail.xml", workdir=tmp_path, timeout=30)
        assert res.rc == 0 and res.successful == 1, res
        await asyncio.wait_for(bot.done.wait(), 5)
    call = bot.calls[0]
    assert call.transfer_result is False and call.port.transferred_to == ""
    assert call.hangup.by == "caller"
