"""Issue 12, SIP side, tried as an attacker would against the real gateway on loopback (threat model: docs/sip.md,
"Security"): a caller ID is a hint unless a trusted peer sent the INVITE (P-Asserted-Identity only from one); a
second socket sending RTP and RFC 4733 keys to a live call's port changes nothing; an SDP whose c= is not a
unicast IP literal, or that points media at the gateway's own ports, gets 488 (a re-INVITE keeps the call).

The acceptance calls run against the REAL app (``serve_in_thread(sip=True)``: CallManager, dialogue, SQLite demo
shop, espeak-ng; keypad mode as no Mandarin speech model can be installed) and read what the bot said from the
call records. Different hosts are played by different loopback addresses: sipp ``-i 127.0.0.2`` is not the trusted 127.0.0.1.
The far end is real sipp; the bot's RTP is captured with tshark; attackers are plain UDP sockets."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

import numpy as np
import pytest
from browser.server import serve_in_thread

from ivr.audio import g711
from ivr.audio.frames import AudioFrame
from ivr.config import load_settings
from ivr.telephony.rtp.stream import RtpStream
from tests.sip.bot import Bot
from tests.sip.peers import RtpCapture, free_port, run_sipp
from tests.test_sip_gateway import GREETING, loud, running


@pytest.fixture
def bot(tmp_path):
    return Bot.from_text(GREETING, tmp_path)


# --- caller identity ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "expected"), [
    ("127.0.0.2", ("13800138000", False)),  # untrusted: P-Asserted-Identity ignored, From is a hint
    ("127.0.0.1", ("13900139000", True)),  # trusted peer: its P-Asserted-Identity names the caller
])
async def test_p_asserted_identity_counts_only_from_a_trusted_peer(bot, tmp_path, source, expected):
    """From: 13800138000 and P-Asserted-Identity: 13900139000 in the same INVITE; sip_trusted_peers=127.0.0.1."""
    async with running(bot, sip_trusted_peers="127.0.0.1/32") as gw:
        res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_caller_id.xml", workdir=tmp_path, timeout=20,
                             local_ip=source, extra=["-key", "caller", "13800138000",
                                                     "-key", "pai", "<sip:13900139000@10.9.8.7;user=phone>"])
        assert res.rc == 0 and res.successful == 1, res
        await asyncio.wait_for(bot.done.wait(), 5)
    info = bot.calls[0].port.info
    assert info.extra["peer"].startswith(source + ":")
    assert (info.caller_id, info.caller_id_trusted) == expected


async def test_no_trusted_peers_by_default_and_tel_uri_assertions(bot, tmp_path):
    """Default settings trust nobody, not even loopback; a trusted peer's tel: assertion is read too."""
    args = ["-key", "caller", "13800138000", "-key", "pai", "<tel:+8613700137000>"]
    async with running(bot) as gw:
        res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_caller_id.xml", workdir=tmp_path / "a",
                             timeout=20, extra=args)
        assert res.rc == 0 and res.successful == 1, res
    async with running(bot, sip_trusted_peers="127.0.0.0/8") as gw:
        res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_caller_id.xml", workdir=tmp_path / "b",
                             timeout=20, extra=args, local_ip="127.0.0.2")
        assert res.rc == 0 and res.successful == 1, res
    first, second = (c.port.info for c in bot.calls)
    assert (first.caller_id, first.caller_id_trusted) == ("13800138000", False)
    assert (second.caller_id, second.caller_id_trusted) == ("+8613700137000", True)


# --- RTP hijack ------------------------------------------------------------------------------------------------------

def _rtp(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


class Attacker:
    """A UDP socket somewhere else that floods a call's RTP port with loud A-law audio and RFC 4733 key 9
    (fresh events, marked, with end packets), sends RTCP BYE and STUN binding requests to its RTP and RTCP
    ports, and records whatever comes back to it."""

    def __init__(self, ip: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, 0))
        self.sock.setblocking(False)
        self.sent = 0
        self.received: list[bytes] = []
        t = np.arange(160) / 8000
        self.tone = g711.alaw_encode(AudioFrame((np.sin(2 * np.pi * 700 * t) * 20000).astype("<i2").tobytes(),
                                                8000))

    async def flood(self, target: tuple[str, int], rtcp: tuple[str, int], stop: asyncio.Event) -> None:
        seq, ts, ssrc = 1000, 50_000, 0x5EC0DE
        tick = 0
        bye = struct.pack("!BBHI", 0x81, 203, 1, ssrc)
        stun = struct.pack("!HHI", 0x0001, 0, 0x2112A442) + bytes(range(12))
        while not stop.is_set():
            if tick % 25 == 0:
                for p, to in ((bye, rtcp), (stun, rtcp), (stun, target)):
                    with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
                        self.sock.sendto(p, to)
            packets = [_rtp(8, seq, ts, ssrc, self.tone)]
            if tick % 10 == 0:  # a key 9 every 200 ms: start (marked), then its end, three times
                event_ts = ts
                packets.append(_rtp(101, seq + 1, event_ts, ssrc, bytes([9, 10, 0, 160]), marker=True))
                packets += [_rtp(101, seq + 2 + i, event_ts, ssrc, bytes([9, 0x80 | 10, 3, 32])) for i in range(3)]
            for p in packets:
                with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
                    self.sock.sendto(p, target)
                    self.sent += 1
            seq += len(packets)
            ts += 160
            tick += 1
            with contextlib.suppress(BlockingIOError):
                while True:
                    self.received.append(self.sock.recv(2048))
            await asyncio.sleep(0.02)

    def close(self) -> None:
        self.sock.close()


@pytest.mark.realtime  # the bot heard ~4.7 s of live caller audio
async def test_a_second_socket_cannot_inject_keys_or_draw_the_bots_audio(bot, tmp_path):
    """A-law call from sipp (speech for 4.7 s, then keys 1 and 2). Once the call is up two attackers, one on
    another host (127.0.0.3) and one on the caller's own IP but another port, send loud audio and key 9 to the
    bot's RTP port for the rest of the call. The bot hears only the caller (keys "12", ~4.7 s of audio), the
    attackers receive not a single packet, and the caller keeps hearing the greeting."""
    media = free_port(even=True)
    attackers = [Attacker("127.0.0.3"), Attacker("127.0.0.1")]
    stop = asyncio.Event()
    try:
        async with running(bot) as gw:
            async with RtpCapture(media, tmp_path / "bot.pcap") as cap:
                caller = asyncio.create_task(run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_latched.xml",
                                                      workdir=tmp_path, media_port=media, timeout=30))
                for _ in range(100):  # until the call's RTP has latched onto sipp's first packet
                    call = next(iter(gw.calls.values()), None)
                    if call is not None and call.stream.rtp_latch.latched:
                        break
                    await asyncio.sleep(0.05)
                assert call is not None and call.stream.rtp_latch.latched == ("127.0.0.1", media)
                target, rtcp = ("127.0.0.1", call.stream.local_port), ("127.0.0.1", call.stream.rtcp_port)
                floods = [asyncio.create_task(a.flood(target, rtcp, stop)) for a in attackers]
                res = await caller
                stop.set()
                await asyncio.gather(*floods)
            assert res.rc == 0 and res.successful == 1, res
            stats = call.stream.stats
    finally:
        stop.set()
        for a in attackers:
            a.close()
    log = bot.calls[0]
    assert all(a.sent > 300 for a in attackers), [a.sent for a in attackers]
    assert log.digits == "12", f"keys accepted: {log.digits!r}"
    assert stats["foreign_packets"] >= sum(a.sent for a in attackers) * 0.9, stats
    heard = log.inbound_audio()
    assert 3.5 < heard.duration < 6.0, f"the bot heard {heard.duration:.1f} s (sipp sent 4.7 s)"
    assert [len(a.received) for a in attackers] == [0, 0], "the bot's audio, RTCP or STUN went to an attacker"
    alaw = [p for pt, p in cap.packets() if pt == 8]
    assert len(alaw) > 0.8 * bot.greeting.duration * 50 and loud(cap.audio()), len(alaw)


async def test_latch_follows_only_a_new_sdp_address(tmp_path):
    """RtpStream on real sockets: packets from a source that is not the SDP peer are dropped; after the SDP
    address changes (re-INVITE) the new peer is heard and the old one no longer; the same SDP address again keeps
    the latch. With sip_rtp_nat_latch off only the exact c=/m= address counts."""
    a, b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.4", 0))
    a.setblocking(False)
    b.setblocking(False)
    heard: list[str] = []
    stream = await RtpStream.open("127.0.0.1", a.getsockname(), "PCMA")
    strict = await RtpStream.open("127.0.0.1", (a.getsockname()[0], a.getsockname()[1] + 2), "PCMA", nat=False)
    stream.on_dtmf = heard.append
    strict.on_dtmf = lambda d: heard.append("strict:" + d)
    seq = [0]

    async def press(sock: socket.socket, digit: int, to: RtpStream) -> None:
        seq[0] += 5
        ts = seq[0] * 1000
        sock.sendto(_rtp(101, seq[0], ts, 0x1234, bytes([digit, 10, 0, 160]), marker=True), ("127.0.0.1", to.local_port))
        for i in range(3):
            sock.sendto(_rtp(101, seq[0] + 1 + i, ts, 0x1234, bytes([digit, 0x8A, 3, 32])), ("127.0.0.1", to.local_port))
        await asyncio.sleep(0.15)

    try:
        await press(b, 9, stream)  # a stranger first: not the SDP peer
        await press(a, 1, stream)  # the SDP peer
        await press(b, 9, stream)
        stream.update_remote(("127.0.0.1", a.getsockname()[1]))  # re-INVITE, same address: latch kept
        await press(b, 9, stream)
        stream.update_remote(b.getsockname())  # re-INVITE moves the media to b
        await press(b, 2, stream)
        await press(a, 9, stream)
        await press(a, 3, strict)  # same IP, another port than the SDP says: only the NAT-tolerant mode takes it
        assert heard == ["1", "2"], heard
        assert stream.remote == b.getsockname() and stream.stats["foreign_packets"] == 16
        assert strict.stats["foreign_packets"] == 4 and strict.rtp_latch.latched is None
    finally:
        await stream.close()
        await strict.close()
        a.close()
        b.close()


# --- SDP c= validation --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("ctype", "cip", "port"), [
    ("IP4", "attacker.example.com", None),  # a host name
    ("IP4", "224.0.0.1", None),  # multicast
    ("IP6", "ff02::1", None),
    ("IP4", "255.255.255.255", None),  # broadcast
    ("IP4", "127.0.0.1", "sip"),  # the gateway's own SIP port
])
async def test_bad_connection_address_gets_488(bot, tmp_path, ctype, cip, port):
    async with running(bot) as gw:
        mport = str(gw.port) if port == "sip" else str(free_port(even=True))
        res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_bad_c.xml", workdir=tmp_path, timeout=15,
                             extra=["-key", "ctype", ctype, "-key", "cip", cip, "-key", "mport", mport])
        assert res.rc == 0 and res.successful == 1, res
        assert gw.counters["answered"] == 0 and not gw.calls
    assert not bot.calls


async def test_own_rtp_port_of_another_call_gets_488(bot, tmp_path):
    """While one call is up, an INVITE whose SDP names that call's RTP port on our address is refused."""
    async with running(bot) as gw:
        first = asyncio.create_task(run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_alaw.xml",
                                             workdir=tmp_path / "a", timeout=30))
        for _ in range(100):
            if gw.calls:
                break
            await asyncio.sleep(0.05)
        (call,) = gw.calls.values()
        for i, port in enumerate((call.stream.local_port, call.stream.rtcp_port)):
            res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_bad_c.xml", workdir=tmp_path / f"b{i}",
                                 timeout=15, extra=["-key", "ctype", "IP4", "-key", "cip", "127.0.0.1",
                                                    "-key", "mport", str(port)])
            assert res.rc == 0 and res.successful == 1, res
        res = await first
        assert res.rc == 0 and res.successful == 1, res
    assert len(bot.calls) == 1 and gw.counters["answered"] == 1


@pytest.mark.realtime  # the bot's RTP never stops for 300 ms
async def test_reinvite_with_bad_c_or_our_own_port_gets_488_and_the_call_goes_on(bot, tmp_path):
    """Answered A-law call; a re-INVITE to a multicast c= gets 488, one pointing the media at the bot's own RTP
    port gets 488; the bot's audio keeps flowing to the caller's original address and sipp's BYE gets 200."""
    media = free_port(even=True)
    async with running(bot) as gw:
        async with RtpCapture(media, tmp_path / "bot.pcap") as cap:
            res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_reinvite_bad_c.xml", workdir=tmp_path,
                                 media_port=media, timeout=30,
                                 extra=["-key", "ctype", "IP4", "-key", "cip", "239.1.2.3"])
        assert res.rc == 0 and res.successful == 1, res
    call = bot.calls[0]
    assert call.hangup is not None and call.hangup.by == "caller", call.hangup
    pkts = cap.timed_packets()
    alaw = [(t, p) for t, pt, p in pkts if pt == 8]
    assert len(alaw) > 150, len(alaw)  # ~4 s of the call at 50 packets/s, to the same address throughout
    gaps = [y[0] - x[0] for x, y in zip(alaw, alaw[1:], strict=False)]
    assert max(gaps) < 0.3, f"the bot's audio stopped for {max(gaps):.2f} s"


# --- acceptance: the real app, caller ID 13800138000 (the demo customer 张伟) -------------------------------------

ORDER_DETAILS = ("李宁", "跑步鞋", "小米", "签收", "承运", "发货", "送达", "100000000002", "一零零")


def _replies(rec) -> dict[str, str]:
    return {t.caller_text: t.bot_text for t in rec.turns if t.kind == "dtmf"}


async def _call(app, gw, tmp_path, scenario: str, source: str, n: int):
    extra = ["-key", "caller", "13800138000"]
    res = await run_sipp(f"127.0.0.1:{gw.port}", scenario=scenario, workdir=tmp_path / f"call{n}", timeout=60,
                         local_ip=source, extra=extra)
    assert res.rc == 0 and res.successful == 1, res
    for _ in range(150):
        recs = [r for r in app.state.calls.records.values() if r.channel == "sip"]
        if len(recs) >= n and app.state.calls.active == 0:
            return recs[n - 1]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no record for call {n}")


async def test_caller_id_is_a_hint_unless_a_trusted_peer_sent_it(tmp_path):
    """sip_trusted_peers = 127.0.0.1. (1) From: 13800138000 via 127.0.0.2 (untrusted), keypad 2 (logistics): the
    bot asks for the order number and says nothing of 张伟's orders. (2) The same from the trusted 127.0.0.1, keypad
    2 and order 100000000002#: the bot may say an order exists, but asks the phone tail before any detail.
    (3) Trusted again, keypad 6 (cancel) and order 100000000004#: the tail is asked before anything is offered or
    written; the order is still paid."""
    settings = load_settings({"data_dir": str(tmp_path / "data"), "sip_trusted_peers": "127.0.0.1"})
    with serve_in_thread(settings, sip=True) as (_url, app):
        gw = app.state.sip
        untrusted = await _call(app, gw, tmp_path, "uac_keypad2.xml", "127.0.0.2", 1)
        trusted = await _call(app, gw, tmp_path, "uac_keypad2_order.xml", "127.0.0.1", 2)
        write = await _call(app, gw, tmp_path, "uac_keypad6_order.xml", "127.0.0.1", 3)
        order = app.state.calls.parts.shop.get_order("100000000004")
    assert order is not None and order.status == "paid", order

    start, key2 = untrusted.turns[0].bot_text, _replies(untrusted).get("2", "")
    assert "订单号" in key2, untrusted.turns
    assert "最近" not in key2 and not [w for w in ORDER_DETAILS if w in start + key2], (start, key2)

    replies = _replies(trusted)
    assert "最近有一笔订单" in replies.get("2", "") and "订单号" in replies["2"], trusted.turns
    said = replies.get("100000000002#", "")
    assert "后四位" in said, trusted.turns
    assert not [w for w in ORDER_DETAILS[:7] if w in said + replies["2"]], said
    assert "核实通过" not in said

    replies = _replies(write)
    said = replies.get("100000000004#", "")
    assert "后四位" in said, write.turns
    assert "确认取消" not in said and not [w for w in ORDER_DETAILS[:7] if w in said], said
    assert untrusted.caller == trusted.caller != "13800138000"  # masked in records either way
