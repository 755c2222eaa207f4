"""Security audit (SIP), found by probing a running `ivr serve` from outside: an INVITE whose Content-Length is
not a number, is negative, is given twice with different values, or (over UDP) promises more body than the
datagram holds was answered 100/180/200 and became a call. RFC 3261 §7.5, §18.3 and §20.14: Content-Length is
1*DIGIT and a UDP request with a body shorter than it declares is refused (here: 400 Bad Content-Length), and no
call is opened for it. The real gateway on loopback, attacked with plain sockets."""

from __future__ import annotations

import asyncio
import socket
import uuid

import pytest

from ivr.telephony.sip.transport import check_raw
from tests.test_sip_gateway import running

SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\n"
       "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")


def invite(port: int, lport: int, length: str | None, *, transport: str = "UDP", extra: str = "") -> bytes:
    lines = [f"INVITE sip:ivr@127.0.0.1:{port} SIP/2.0",
             f"Via: SIP/2.0/{transport} 127.0.0.1:{lport};branch=z9hG4bK{uuid.uuid4().hex[:10]};rport",
             "Max-Forwards: 70", f"From: <sip:13800138000@127.0.0.1>;tag={uuid.uuid4().hex[:8]}",
             "To: <sip:ivr@127.0.0.1>", f"Call-ID: {uuid.uuid4().hex}", "CSeq: 1 INVITE",
             f"Contact: <sip:13800138000@127.0.0.1:{lport}>", "Content-Type: application/sdp"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\n\r\n" + SDP).encode()


class Handler:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, port) -> None:
        self.calls += 1
        await port.hangup()


BAD = [("abc", ""), ("-5", ""), ("99999", ""), (f"+{len(SDP)}", ""), ("1_0", ""), ("1e3", ""),
       (str(len(SDP)), "Content-Length: 5"), (str(len(SDP)), "l: 0")]


@pytest.mark.parametrize(("length", "extra"), BAD)
def test_check_raw_refuses_a_bad_content_length(length, extra):
    assert check_raw(invite(5060, 5062, length, extra=extra)) == (400, "Bad Content-Length")


@pytest.mark.parametrize("length", [str(len(SDP)), None, str(len(SDP) - 10), f" {len(SDP)} "])
def test_check_raw_keeps_good_or_absent_content_lengths(length):
    assert check_raw(invite(5060, 5062, length)) is None
    head, body = invite(5060, 5062, length).split(b"\r\n\r\n", 1)
    assert check_raw(head.replace(b"\r\n", b"\n") + b"\n\n" + body) is None  # bare LF line ends


async def _udp(gw_port: int, length: str, extra: str = "") -> list[bytes]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        s.sendto(invite(gw_port, s.getsockname()[1], length, extra=extra), ("127.0.0.1", gw_port))
        out = [await asyncio.wait_for(loop.sock_recv(s, 65535), 3)]
        while out[-1].startswith(b"SIP/2.0 1"):
            out.append(await asyncio.wait_for(loop.sock_recv(s, 65535), 3))
        return out
    finally:
        s.close()


async def _tcp(gw_port: int, length: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", gw_port)
    lport = writer.get_extra_info("sockname")[1]
    writer.write(invite(gw_port, lport, length, transport="TCP"))
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    finally:
        writer.close()


@pytest.mark.parametrize(("length", "extra"), BAD)
async def test_udp_invite_with_a_bad_content_length_gets_400_and_no_call(length, extra):
    h = Handler()
    async with running(h) as gw:
        replies = await _udp(gw.port, length, extra)
        assert [r.split(b"\r\n", 1)[0] for r in replies] == [b"SIP/2.0 400 Bad Content-Length"]
        await asyncio.sleep(0.2)
        assert gw.counters["answered"] == 0 and not gw.calls and h.calls == 0


@pytest.mark.parametrize("length", ["abc", "-5", f"+{len(SDP)}"])
async def test_tcp_invite_with_a_bad_content_length_gets_400_and_no_call(length):
    h = Handler()
    async with running(h) as gw:
        reply = await _tcp(gw.port, length)
        assert reply.split(b"\r\n", 1)[0] == b"SIP/2.0 400 Bad Content-Length"
        await asyncio.sleep(0.2)
        assert gw.counters["answered"] == 0 and not gw.calls and h.calls == 0


# --- media before the ACK -------------------------------------------------------------------------------------
# Found: one UDP INVITE (any source: its 200 OK goes to the Via, which nobody needs to read) whose SDP names a third
# party's address made the gateway send that address RTP from the moment the stream opened (before 180 Ringing)
# until Timer H released the call 32 s later: 1,775 packets, 305 KB for a 531-byte INVITE (575x), with the
# defaults (sip_allow_from empty). Now nothing is sent before the caller's ACK, and the call handler (the bot's
# greeting) starts only then: whoever draws media must have read our 200 OK.

class Waiter:
    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def __call__(self, port) -> None:
        self.started.set()
        while True:
            ev = await port.recv()
            if type(ev).__name__ == "Hangup":
                return


def _header(msg: bytes, name: str) -> str:
    for line in msg.decode().split("\r\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} in {msg!r}")


async def _count(sock: socket.socket, seconds: float) -> int:
    loop = asyncio.get_running_loop()
    n, end = 0, loop.time() + seconds
    while (left := end - loop.time()) > 0:
        try:
            await asyncio.wait_for(loop.sock_recv(sock, 2048), left)
            n += 1
        except TimeoutError:
            break
    return n


async def test_no_rtp_reaches_the_sdp_address_before_the_ack():
    victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    victim.bind(("127.0.0.3", 0))
    victim.setblocking(False)
    sig = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sig.bind(("127.0.0.1", 0))
    sig.setblocking(False)
    loop = asyncio.get_running_loop()
    h = Waiter()
    try:
        async with running(h, sip_ring_ms=300) as gw:
            sdp = SDP.replace("127.0.0.1", "127.0.0.3").replace("m=audio 40000", f"m=audio {victim.getsockname()[1]}")
            msg = invite(gw.port, sig.getsockname()[1], str(len(sdp))).replace(SDP.encode(), sdp.encode())
            sig.sendto(msg, ("127.0.0.1", gw.port))
            ok = await asyncio.wait_for(loop.sock_recv(sig, 65535), 3)
            while ok.startswith(b"SIP/2.0 1"):
                ok = await asyncio.wait_for(loop.sock_recv(sig, 65535), 3)
            assert ok.startswith(b"SIP/2.0 200")
            assert await _count(victim, 1.5) == 0, "RTP sent before the ACK"
            assert not h.started.is_set(), "the call handler started before the ACK"
            ack = "\r\n".join([
                f"ACK sip:ivr@127.0.0.1:{gw.port} SIP/2.0",
                f"Via: SIP/2.0/UDP 127.0.0.1:{sig.getsockname()[1]};branch=z9hG4bK{uuid.uuid4().hex[:10]};rport",
                "Max-Forwards: 70", f"From: {_header(ok, 'From')}", f"To: {_header(ok, 'To')}",
                f"Call-ID: {_header(ok, 'Call-ID')}", "CSeq: 1 ACK", "Content-Length: 0", "", ""])
            sig.sendto(ack.encode(), ("127.0.0.1", gw.port))
            await asyncio.wait_for(h.started.wait(), 3)
            assert await _count(victim, 0.6) >= 10, "no RTP after the ACK"
            for port in list(gw.calls.values()):
                await port.hangup("test over")
    finally:
        victim.close()
        sig.close()
