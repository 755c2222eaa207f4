"""One RTP audio stream of one call leg, on top of aiortp.

aiortp does the packet work: parsing, the jitter buffer (reordering, duplicate and loss detection; isolated in
``aiortp.jitterbuffer.JitterBuffer`` and exercised by tests/test_sip_rtp.py), packet-loss concealment, RFC 4733
telephone-events and RTCP reports. This module adds what a call needs around it: an ephemeral port on the
gateway's host, G.711 at 8 kHz in both directions, a send queue drained by a 20 ms clock (silence when the bot
has nothing to say, nothing while on hold), back-pressure so a producer that writes a whole prompt at once is
paced instead of buffered for minutes, and source latching (``ivr.telephony.rtp.latch``): the RTP and RTCP
sockets accept packets only from the peer the SDP names (latched on its first packet), so nobody else can
inject audio or keys or draw the bot's audio to themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiortp import RTPSession
from aiortp.dtmf import DTMF_EVENTS, DtmfEvent
from aiortp.port_allocator import PortAllocator

from ivr.telephony.adapters import aiortp_private as rtp_private
from ivr.telephony.rtp.latch import SourceLatch, normalize_ip

log = logging.getLogger(__name__)

G711_RATE = 8000
PTIME_MS = 20
FRAME_SAMPLES = G711_RATE * PTIME_MS // 1000  # 160 samples, 320 bytes of s16
FRAME_BYTES = FRAME_SAMPLES * 2
CODEC_PT = {"PCMU": 0, "PCMA": 8}
DTMF_MS = 100  # tone length of a key we send (RFC 4733 events; phones send 60-200 ms)
DTMF_GAP_MS = 60  # audio between two keys


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """Media options of a stream (defaults suit PBXs and trunks on a LAN or a decent WAN)."""

    jitter_capacity: int = 32  # packets the jitter buffer can hold (power of two)
    jitter_prefetch: int = 3  # most complete frames held before delivery: the widest reorder window (3 x 20 ms)
    jitter_start: int = 1  # frames held at first; the window grows (up to jitter_prefetch) once packets reorder
    max_queued_ms: int = 120  # send_pcm() waits while more than this is queued
    send_silence: bool = True  # keep the stream alive with silence between prompts (PBX RTP timeouts)


class RtpStream:
    """A bound RTP/RTCP socket pair exchanging 8 kHz s16 PCM with one peer as G.711."""

    def __init__(self, session: RTPSession, codec: str, config: StreamConfig, peer_ips: Iterable[str] = (),
                 nat: bool = True) -> None:
        self._session = session
        self.codec = codec
        self.config = config
        self.on_pcm: Callable[[bytes], None] | None = None
        self.last_rx_at: float | None = None  # arrival (monotonic) of the packet behind the PCM on_pcm gets now
        self._arrivals: dict[int, float] = {}  # RTP timestamp -> arrival, until the jitter buffer releases it
        self._top_seq: int | None = None  # newest RTP sequence number seen (reorder depth = how far behind it)
        self.jitter_frames = min(config.jitter_start, config.jitter_prefetch)  # the jitter buffer's window now
        self.on_dtmf: Callable[[str], None] | None = None
        self._out = bytearray()
        self._out_start = 0  # bytes ever taken from ``_out`` (the queue's offset in the stream of bytes sent)
        self._marks: deque[tuple[int, Callable[[float], None]]] = deque()  # (stream byte offset, called when sent)
        self._room = asyncio.Event()
        self._room.set()
        self._hold = False
        self._closed = False
        self._silence = session.codec.encode(bytes(FRAME_BYTES))
        self.frames_sent = 0
        self.frames_received = 0
        self.digits_sent = ""
        self._keys: deque[str] = deque()
        self._event: list[int] | None = None  # [event code, RTP timestamp, ticks sent, ticks total]
        self._gap = 0  # ticks of audio still due before the next key
        session.on_audio = self._on_audio
        session.on_dtmf = self._on_dtmf
        rtp_private.use_marker_aware_dtmf(session)
        self._peer_ips = tuple(peer_ips)
        self.rtp_latch = SourceLatch(rtp_private.remote(session), self._peer_ips, "RTP", nat)
        self.rtcp_latch = SourceLatch(rtp_private.remote(session, rtcp=True), (), "RTCP", nat, leader=self.rtp_latch)
        self._guard(self.rtp_latch, rtcp=False)
        self._guard(self.rtcp_latch, rtcp=True)
        self._task = asyncio.get_running_loop().create_task(self._pace(), name="rtp-pacer")

    @classmethod
    async def open(
        cls, bind_host: str, remote: tuple[str, int], codec: str, dtmf_pt: int | None = 101,
        config: StreamConfig | None = None, peer_ips: Iterable[str] = (), nat: bool = True,
        ports: PortAllocator | None = None,
    ) -> RtpStream:
        """Bind an ephemeral port (an RTP/RTCP pair from ``ports`` when given) on ``bind_host`` and start streaming
        to ``remote`` with ``codec``.

        Packets are accepted from ``remote`` (the SDP address), its IP on another port, or ``peer_ips`` (the
        address that signalled the call); the first such packet latches the peer (module docstring). ``nat=False``:
        only from ``remote`` exactly."""
        cfg = config or StreamConfig()
        session = await RTPSession.create(
            local_addr=(bind_host, 0),
            remote_addr=remote,
            payload_type=CODEC_PT[codec],
            dtmf_payload_type=dtmf_pt if dtmf_pt is not None else -1,
            jitter_capacity=cfg.jitter_capacity,
            jitter_prefetch=min(cfg.jitter_start, cfg.jitter_prefetch),
            skip_audio_gaps=True,
            plc=True,
            symmetric_rtp=False,  # latching is ours (SourceLatch): aiortp's would follow any source
            port_allocator=ports,
        )
        return cls(session, codec, cfg, peer_ips, nat)

    def _guard(self, latch: SourceLatch, *, rtcp: bool) -> None:
        """Filter one socket's datagrams (RTP, RTCP, STUN) through ``latch``; send to the latched peer."""
        protocol = rtp_private.socket_protocol(self._session, rtcp=rtcp)
        inner = protocol.datagram_received

        def guarded(data: bytes, addr: tuple[str, int]) -> None:
            if not latch.admit(addr):
                return
            if not rtcp and len(data) >= 12:
                self._arrived(int.from_bytes(data[4:8], "big"))
                self._reorder_check(int.from_bytes(data[2:4], "big"))
            if latch.latched is not None and rtp_private.remote(self._session, rtcp=rtcp) != latch.latched:
                rtp_private.set_remote(self._session, latch.latched, rtcp=rtcp)
            inner(data, addr)

        protocol.datagram_received = guarded

    # --- addresses and state --------------------------------------------------------------------------
    @property
    def local_port(self) -> int:
        return rtp_private.local_port(self._session)

    @property
    def rtcp_port(self) -> int:
        return rtp_private.local_port(self._session, rtcp=True)

    @property
    def remote(self) -> tuple[str, int]:
        return rtp_private.remote(self._session)

    def update_remote(self, addr: tuple[str, int], peer_ips: Iterable[str] | None = None) -> None:
        """The SDP address from a re-INVITE or an answer. The same address as before keeps the latched peer; a
        different one re-arms both latches for it (and ``peer_ips``, if given)."""
        if peer_ips is not None:
            self._peer_ips = tuple(peer_ips)
        elif (normalize_ip(addr[0]), addr[1]) == self.rtp_latch.expected:
            return
        self._session.update_remote(addr)
        self.rtp_latch.expect(addr, self._peer_ips)
        self.rtcp_latch.expect(rtp_private.remote(self._session, rtcp=True))

    def set_hold(self, on_hold: bool) -> None:
        """On hold nothing is sent (the peer said sendonly/inactive); queued bot audio is kept."""
        self._hold = on_hold

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def on_hold(self) -> bool:
        return self._hold

    @property
    def stats(self) -> dict:
        s = dict(self._session.stats)
        s.update(frames_sent=self.frames_sent, frames_received=self.frames_received, codec=self.codec,
                 foreign_packets=self.rtp_latch.dropped + self.rtcp_latch.dropped)
        return s

    @property
    def queued_ms(self) -> float:
        return len(self._out) / 2 / G711_RATE * 1000

    # --- audio in and out -----------------------------------------------------------------------------
    async def send_pcm(self, pcm: bytes, on_sent: Callable[[float], None] | None = None) -> None:
        """Queue 8 kHz s16 PCM for the peer; waits while more than ``max_queued_ms`` is queued. ``on_sent(at)`` is
        called with the ``time.monotonic()`` the packet holding its first sample went out (not if it never does).

        Digital silence arriving while two frames or more are queued is dropped: the 20 ms clock makes its own
        silence when the queue runs dry, and a paced producer (the call's playout, idle frames included) drifting
        against that clock would otherwise pile up to ``max_queued_ms`` of silence in front of the next reply.
        Audio with ``on_sent`` (a reply's first frame) drops digital silence still queued ahead of it: the caller
        hears the reply up to two frames sooner."""
        if self._closed:
            return
        if len(self._out) >= 2 * FRAME_BYTES and not pcm.strip(b"\0"):
            return
        while self.queued_ms > self.config.max_queued_ms and not self._closed:
            self._room.clear()
            await self._room.wait()
        if on_sent is not None and self._out and not self._out.strip(b"\0"):
            self._out_start += len(self._out)  # a reply starts: the idle silence queued ahead of it goes
            self._out.clear()
        if on_sent is not None and not self._closed:
            self._marks.append((self._out_start + len(self._out), on_sent))
        self._out += pcm

    def send_dtmf(self, digit: str) -> bool:
        """Queue one key as an RFC 4733 telephone-event (sent by the 20 ms clock in place of audio: a marked
        first packet, growing durations, three end packets, all with the event's own timestamp).
        False if the peer did not negotiate telephone-event or the key is not a DTMF key."""
        if self._closed or not rtp_private.sends_dtmf(self._session) or digit.upper() not in DTMF_EVENTS:
            return False
        self._keys.append(digit.upper())
        return True

    def _dtmf_tick(self) -> bool:
        """Send this tick's telephone-event packet(s); True if the tick was used for DTMF."""
        if self._event is None:
            if self._gap > 0 or not self._keys:
                self._gap = max(0, self._gap - 1)
                return False
            self._event = [DTMF_EVENTS[self._keys.popleft()], rtp_private.media_timestamp(self._session), 0,
                           max(1, DTMF_MS // PTIME_MS)]
        code, ts, sent, total = self._event
        sent += 1
        duration = sent * FRAME_SAMPLES
        if sent < total:
            rtp_private.send_event_packet(self._session, DtmfEvent(event=code, end=False, volume=10,
                                                                   duration=duration).serialize(), ts,
                                          marker=1 if sent == 1 else 0)
            self._event[2] = sent
        else:
            end = DtmfEvent(event=code, end=True, volume=10, duration=duration).serialize()
            for i in range(3):  # the end packet, sent three times (RFC 4733 §2.5.1.4)
                rtp_private.send_event_packet(self._session, end, ts, marker=1 if sent == 1 and i == 0 else 0)
            self._event = None
            self._gap = DTMF_GAP_MS // PTIME_MS
            self.digits_sent += next(k for k, v in DTMF_EVENTS.items() if v == code)
        rtp_private.advance_media_clock(self._session)  # the event took this tick's place in the media clock
        return True

    def clear(self) -> None:
        """Drop queued outbound audio (barge-in, transfer)."""
        self._out_start += len(self._out)
        self._marks.clear()
        self._out.clear()
        self._room.set()

    def _arrived(self, timestamp: int) -> None:
        """Remember when the packet with this RTP timestamp arrived (the caller-side start of a turn's trace)."""
        arrivals = self._arrivals
        arrivals.setdefault(timestamp, time.monotonic())
        if len(arrivals) > 4 * self.config.jitter_capacity:  # events, comfort noise, never released: forget
            del arrivals[next(iter(arrivals))]

    def _reorder_check(self, seq: int) -> None:
        """Adaptive reorder window: a packet arriving ``d`` places behind the newest one seen widens the jitter
        buffer to ``d + 1`` frames (up to ``jitter_prefetch``); the first such packet may already be concealed.
        A line that keeps its order keeps the ``jitter_start`` window (20 ms instead of 60 ms of delay)."""
        top = self._top_seq
        if top is None or (seq - top) % 65536 < 32768:
            self._top_seq = seq
            return
        behind = (top - seq) % 65536
        if self.jitter_frames <= behind < 100:
            self.jitter_frames = min(self.config.jitter_prefetch, behind + 1)
            rtp_private.set_jitter_prefetch(self._session, self.jitter_frames)

    def _on_audio(self, pcm: bytes, timestamp: int) -> None:
        self.frames_received += 1
        self.last_rx_at = self._arrivals.pop(timestamp, None)  # None: concealment of a lost packet
        if self.on_pcm is not None:
            self.on_pcm(pcm)

    def _on_dtmf(self, digit: str, _duration: int) -> None:
        if self.on_dtmf is not None:
            self.on_dtmf(digit)

    async def _pace(self) -> None:
        period = PTIME_MS / 1000
        deadline = time.monotonic()
        while not self._closed:
            deadline += period
            now = time.monotonic()
            if deadline < now - 0.2:  # the loop stalled: restart the clock instead of bursting
                deadline = now
            await asyncio.sleep(max(0.0, deadline - now))
            if self._closed:
                break
            if len(self._out) >= FRAME_BYTES:
                chunk = bytes(self._out[:FRAME_BYTES])
                del self._out[:FRAME_BYTES]
                self._out_start += FRAME_BYTES
            elif self._out:
                chunk = bytes(self._out) + bytes(FRAME_BYTES - len(self._out))
                self._out_start += len(self._out)
                self._out.clear()
            else:
                chunk = None
            if self.queued_ms <= self.config.max_queued_ms:
                self._room.set()
            if self._hold:
                while self._marks and self._marks[0][0] < self._out_start:  # held audio is not heard
                    self._marks.popleft()
                continue
            try:
                if (self._keys or self._event is not None or self._gap) and self._dtmf_tick():
                    continue
                if chunk is not None:
                    self._session.send_audio_pcm_auto(chunk)
                    self._sent_marks(time.monotonic())
                elif self.config.send_silence:
                    self._session.send_audio_auto(self._silence)
                else:
                    continue
                self.frames_sent += 1
            except OSError as e:  # ICMP unreachable etc.: keep the call, log once per burst
                log.debug("RTP send failed: %s", e)

    def _sent_marks(self, at: float) -> None:
        """Call the ``on_sent`` of every mark whose first byte has been taken from the queue and sent."""
        while self._marks and self._marks[0][0] < self._out_start:
            _offset, on_sent = self._marks.popleft()
            try:
                on_sent(at)
            except Exception:  # a listener's bug must not stop the RTP clock
                log.exception("on_sent callback failed")

    async def close(self) -> None:
        """Stop sending and release the ports (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._room.set()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._session.close()
