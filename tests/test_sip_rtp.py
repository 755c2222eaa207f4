"""RTP media of a SIP call leg (ivr/telephony/rtp/stream.py over aiortp) on real loopback UDP sockets: the jitter
buffer restores order, conceals losses without shortening the audio, drops duplicates; RFC 4733 keys sent by
one stream arrive at another as the same keys (repeated keys included)."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import numpy as np
from aiortp.packet import RtpPacket

from ivr.audio import g711
from ivr.telephony.rtp.stream import FRAME_SAMPLES, RtpStream

N = 60


def _code(i: int) -> int:
    return 0x80 + 2 * i  # a distinct mu-law code per frame: each decoded frame says which packet it came from


@contextlib.asynccontextmanager
async def _line():
    """A stream on loopback and a peer socket: (the stream, the PCM it delivered, ``send(i)``: packet i, then 20 ms)."""
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setblocking(False)
    stream = await RtpStream.open("127.0.0.1", peer.getsockname(), "PCMU")
    got: list[bytes] = []
    stream.on_pcm = got.append
    loop = asyncio.get_running_loop()

    async def send(i: int) -> None:
        pkt = RtpPacket(payload_type=0, marker=0, sequence_number=1000 + i, timestamp=FRAME_SAMPLES * i,
                        ssrc=0x1234, payload=bytes([_code(i)]) * FRAME_SAMPLES)
        await loop.sock_sendto(peer, pkt.serialize(), ("127.0.0.1", stream.local_port))
        await asyncio.sleep(0.02)

    try:
        yield stream, got, send
    finally:
        await stream.close()
        peer.close()


async def _play(order: list[int]) -> tuple[list[object], dict]:
    """Send packets ``order`` (sequence/timestamp of frame i) at 20 ms; returns what the stream delivered, one
    entry per 20 ms: the frame index, or "plc" for concealment."""
    async with _line() as (stream, got, send):
        for i in order:
            await send(i)
        await asyncio.sleep(0.3)
        stats = stream.stats
    value = {int(g711.decode("PCMU", bytes([_code(i)])).to_numpy()[0]): i for i in range(N)}
    frames: list[object] = []
    for pcm in got:
        x = np.frombuffer(pcm, "<i2")
        assert len(x) % FRAME_SAMPLES == 0, len(x)
        for k in range(0, len(x), FRAME_SAMPLES):
            f = x[k : k + FRAME_SAMPLES]
            frames.append(value.get(int(f[0]), "plc") if (f == f[0]).all() else "plc")
    return frames, stats


async def test_reordered_and_lost_packets_come_out_in_order_and_concealed():
    order = list(range(N))
    order[10], order[11] = order[11], order[10]  # adjacent swap
    order[20], order[22] = order[22], order[20]  # two places apart: inside the 3-frame reorder window
    lost = {30, 41, 42}  # a single loss and a burst of two
    frames, stats = await _play([i for i in order if i not in lost])
    expected = ["plc" if i in lost else i for i in range(N)]
    assert len(frames) >= N - 4, frames  # the last few may still sit in the reorder window
    assert frames == expected[: len(frames)], frames  # order restored; every 20 ms accounted for
    assert stats["packets_lost"] == 3 and stats["concealed_frames"] == 3, stats


async def test_duplicates_are_delivered_once():
    order = list(range(N))
    order[15:15] = [14, 14]  # packet 14 arrives three times
    frames, _ = await _play(order)
    assert frames.count(14) == 1 and frames[: len(frames)] == list(range(len(frames))), frames


async def test_rfc4733_keys_cross_between_two_streams_repeats_included():
    a = await RtpStream.open("127.0.0.1", ("127.0.0.1", 9), "PCMA")
    b = await RtpStream.open("127.0.0.1", ("127.0.0.1", a.local_port), "PCMA")
    a.update_remote(("127.0.0.1", b.local_port))
    keys: list[str] = []
    b.on_dtmf = keys.append
    try:
        for d in "100000000002#":
            assert a.send_dtmf(d)
        assert not a.send_dtmf("x")
        for _ in range(200):
            if len(keys) == 13:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # nothing more (end packets are sent three times: still one key each)
    finally:
        await a.close()
        await b.close()
    assert "".join(keys) == "100000000002#" and a.digits_sent == "100000000002#"


async def test_an_ordered_line_waits_one_frame_and_reordering_widens_the_window():
    """Packets in order are delivered one frame after they arrive (20 ms of delay, not the 60 ms of a fixed
    3-frame window); once a packet comes two places late the window is 3 frames, and later reorders of that
    depth lose nothing."""
    async with _line() as (stream, got, send):
        async def delivered_after(i: int) -> int:
            await send(i)
            return sum(len(p) // 2 // FRAME_SAMPLES for p in got)

        held = [i + 1 - await delivered_after(i) for i in range(10)]  # frames arrived but not yet delivered
        assert stream.jitter_frames == 1 and max(held[2:]) <= 1, held
        for i in (12, 11, 10):  # 10 comes two places late
            await send(i)
        assert stream.jitter_frames == 3
        for i in (13, 16, 15, 14, 17, 18, 19, 20):  # another reorder of depth 2: absorbed
            await send(i)
        await asyncio.sleep(0.2)
        stats = stream.stats
    assert stats["packets_lost"] <= 1, stats  # at most the first late packet, before the window grew


async def test_a_reply_does_not_wait_behind_idle_silence_queued_for_the_line():
    """The call's idle frames (digital silence) queued for the RTP clock are dropped when a reply's first frame
    (the one whose send is reported) arrives: the peer's next packet is the reply's, not 40 ms of silence. Queued
    speech is never dropped."""
    async with _line() as (stream, _got, _send):
        frame = FRAME_SAMPLES * 2
        reply, speech, aired = b"\x10\x01" * FRAME_SAMPLES, b"\x20\x02" * FRAME_SAMPLES, []
        await stream.send_pcm(bytes(frame))
        await stream.send_pcm(bytes(frame))
        await stream.send_pcm(reply, on_sent=aired.append)
        assert stream.queued_ms == 20.0  # the two silent frames ahead of it went
        for _ in range(50):
            if aired:
                break
            await asyncio.sleep(0.01)
        assert aired, "the reply's first packet was never sent"
        await stream.send_pcm(speech)
        await stream.send_pcm(reply, on_sent=aired.append)
        assert stream.queued_ms == 40.0  # behind queued speech it waits its turn
