"""A light SIP caller for load measurements: plain asyncio UDP (one SIP and one RTP socket per call), no threads.

INVITE/ACK/BYE by hand (the part of RFC 3261 a UAC needs towards ``ivr serve`` on loopback: no proxies, no auth),
PCMU RTP paced by an absolute 20 ms clock with consecutive sequence numbers and timestamps (+160 per packet),
utterances sent as pre-encoded payloads, and a log of the bot's RTP as it arrives (arrival time, loudness), so
what the caller hears is measured on the wire. Hundreds of these fit in one process: each packet costs a
``sendto`` and, on receipt, one G.711 decode and RMS in C (audioop).
"""

from __future__ import annotations

import asyncio
import math
import random
import struct
import time
import uuid
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

PTIME_S = 0.02
SAMPLES = 160  # 20 ms at 8 kHz
LOUD_DBFS = -40.0  # "audible": the caller's speech and the bot's reply are well above, line noise well below
ULAW_SILENCE = b"\xff" * SAMPLES


def dbfs(pcm: bytes) -> float:
    """RMS level of s16 PCM in dBFS (-120 for digital silence)."""
    r = audioop.rms(pcm, 2)
    return 20 * math.log10(r / 32768) if r > 0 else -120.0


@dataclass(frozen=True)
class Clip:
    """Something the caller can say: pre-encoded PCMU packets and which of them are loud."""

    payloads: list[bytes]
    loud: list[bool]

    @property
    def duration(self) -> float:
        return len(self.payloads) * PTIME_S


@dataclass
class Utterance:
    """One saying of a clip on one call, with its wire times."""

    clip: Clip
    started: float | None = None  # send time of its first packet
    last_loud: float | None = None  # send time of its last loud packet (the caller's speech end on the wire)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, tuple[str, int], float], None]) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.on_datagram(data, addr, time.monotonic())


def _parse_sip(data: bytes) -> tuple[str, dict[str, str], str] | None:
    """(start line, lower-cased headers (first value each), body) or None."""
    try:
        text = data.decode("utf-8", "replace")
    except UnicodeError:
        return None
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), value.strip())
    return lines[0], headers, body


class WireCall:
    """One SIP caller: dial, talk (paced RTP), listen (logged RTP), hang up."""

    def __init__(self, server: tuple[str, int], noise: list[bytes] | None = None, host: str = "127.0.0.1") -> None:
        self.server = server
        self.host = host
        self.noise = noise or [ULAW_SILENCE]  # what the line carries between utterances (pre-encoded)
        self.call_id = f"{uuid.uuid4().hex}@{host}"
        self.tag = uuid.uuid4().hex[:10]
        self.record_id = ""  # X-Ivr-Call-Id of the 200 OK: the server's record of this call
        self.remote_tag = ""
        self.contact = f"sip:ivr@{server[0]}:{server[1]}"
        self.rtp_remote: tuple[str, int] | None = None
        self.hung_up: str | None = None  # "bot" when the server sent BYE, "caller" after ours
        self.rx: list[tuple[float, bool]] = []  # bot RTP: (arrival, loud)
        self.late_max_s = 0.0  # how far this caller's pacer fell behind its clock (the generator's own health)
        self.packets_sent = 0
        self._queue: deque[Utterance] = deque()
        self._cseq = 1
        self._responses: asyncio.Queue[tuple[str, dict[str, str], str]] = asyncio.Queue()
        self._sip: asyncio.DatagramTransport | None = None
        self._rtp: asyncio.DatagramTransport | None = None
        self._pacer: asyncio.Task | None = None
        self._seq = random.randrange(1 << 16)
        self._ts = random.randrange(1 << 32)
        self._ssrc = random.randrange(1 << 32)

    # --- sockets ----------------------------------------------------------------------------------------------
    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._sip, _ = await loop.create_datagram_endpoint(lambda: _Udp(self._on_sip), local_addr=(self.host, 0))
        self._rtp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self._on_rtp), local_addr=(self.host, 0))

    @property
    def sip_port(self) -> int:
        assert self._sip is not None
        return self._sip.get_extra_info("sockname")[1]

    @property
    def rtp_port(self) -> int:
        assert self._rtp is not None
        return self._rtp.get_extra_info("sockname")[1]

    # --- SIP ----------------------------------------------------------------------------------------------
    def _request(self, method: str, uri: str, cseq: int, body: str = "", branch: str | None = None) -> bytes:
        to = f"<sip:ivr@{self.server[0]}:{self.server[1]}>" + (f";tag={self.remote_tag}" if self.remote_tag else "")
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.host}:{self.sip_port};branch={branch or 'z9hG4bK' + uuid.uuid4().hex[:16]};rport",
            "Max-Forwards: 70",
            f"From: <sip:wire-caller@{self.host}>;tag={self.tag}",
            f"To: {to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:wire-caller@{self.host}:{self.sip_port}>",
            "User-Agent: ivr-bench-wire",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def _sdp(self) -> str:
        return (f"v=0\r\no=wire 1 1 IN IP4 {self.host}\r\ns=-\r\nc=IN IP4 {self.host}\r\nt=0 0\r\n"
                f"m=audio {self.rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
                "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n")

    def _on_sip(self, data: bytes, addr: tuple[str, int], _at: float) -> None:
        msg = _parse_sip(data)
        if msg is None or self._sip is None:
            return
        start, headers, _body = msg
        if start.startswith("SIP/2.0"):
            self._responses.put_nowait(msg)
            return
        method = start.split(" ", 1)[0]
        if method == "ACK":
            return
        reply = ["SIP/2.0 200 OK"] + [f"{h}: {headers[h.lower()]}" for h in ("Via", "From", "To", "Call-ID", "CSeq")
                                       if h.lower() in headers] + ["Content-Length: 0", "", ""]
        self._sip.sendto("\r\n".join(reply).encode(), addr)
        if method == "BYE" and self.hung_up is None:
            self.hung_up = "bot"
            self._stop_media()

    async def _transact(self, method: str, uri: str, cseq: int, body: str = "", timeout: float = 10.0):
        """Send a request (retransmitted every 0.5 s until any answer) and return its final response."""
        assert self._sip is not None
        packet = self._request(method, uri, cseq, body)
        deadline = time.monotonic() + timeout
        answered = False
        while time.monotonic() < deadline:
            if not answered:
                self._sip.sendto(packet, self.server)
            try:
                start, headers, rbody = await asyncio.wait_for(self._responses.get(), 0.5)
            except TimeoutError:
                continue
            if not headers.get("cseq", "").endswith(f" {method}") or not headers.get("cseq", "").startswith(f"{cseq} "):
                continue
            answered = True
            code = int(start.split(" ")[1])
            if code >= 200:
                return code, headers, rbody
        raise TimeoutError(f"{method}: no final response within {timeout:.0f} s")

    async def dial(self, timeout: float = 15.0) -> None:
        """INVITE, ACK the 200, start sending RTP. Raises on refusal or time-out."""
        uri = self.contact
        code, headers, body = await self._transact("INVITE", uri, 1, self._sdp(), timeout)
        if code != 200:
            raise ConnectionError(f"INVITE answered {code}")
        self.remote_tag = headers.get("to", "").partition("tag=")[2].split(";")[0]
        self.record_id = headers.get("x-ivr-call-id", "")
        contact = headers.get("contact", "")
        if "<" in contact:
            self.contact = contact.split("<", 1)[1].split(">", 1)[0]
        self.rtp_remote = _sdp_media(body) or self.server
        assert self._sip is not None
        self._sip.sendto(self._request("ACK", self.contact, 1), self.server)
        self._pacer = asyncio.get_running_loop().create_task(self._pace(), name="wire-rtp")

    async def hangup(self) -> None:
        """BYE (when the bot has not hung up already), then stop media and close the sockets."""
        if self.hung_up is None and self.remote_tag:
            self.hung_up = "caller"
            self._stop_media()
            self._cseq += 1
            try:
                await self._transact("BYE", self.contact, self._cseq, timeout=5.0)
            except TimeoutError:
                pass
        self.close()

    def close(self) -> None:
        self._stop_media()
        for t in (self._sip, self._rtp):
            if t is not None:
                t.close()

    # --- RTP ----------------------------------------------------------------------------------------------
    def say(self, clip: Clip) -> Utterance:
        """Queue a clip: the pacer sends it from its next 20 ms tick."""
        utt = Utterance(clip)
        self._queue.append(utt)
        return utt

    def _on_rtp(self, data: bytes, _addr: tuple[str, int], at: float) -> None:
        if len(data) < 12 or data[0] >> 6 != 2 or data[1] & 0x7F != 0:
            return
        off = 12 + 4 * (data[0] & 0x0F)
        if data[0] & 0x10 and len(data) >= off + 4:
            off += 4 + 4 * struct.unpack_from("!H", data, off + 2)[0]
        payload = data[off:]
        if payload:
            self.rx.append((at, dbfs(audioop.ulaw2lin(payload, 2)) > LOUD_DBFS))

    async def _pace(self) -> None:
        assert self._rtp is not None and self.rtp_remote is not None
        t0 = time.monotonic()
        k, n_noise, current = 0, len(self.noise), None
        try:
            while self.hung_up is None:
                k += 1
                wait = t0 + k * PTIME_S - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                else:  # behind: send at once (timestamps stay on the 20 ms grid), and remember by how much
                    self.late_max_s = max(self.late_max_s, -wait)
                if self.hung_up is not None:
                    break
                if current is None and self._queue:
                    current, i = self._queue.popleft(), 0
                now = time.monotonic()
                if current is not None:
                    if current.started is None:
                        current.started = now
                    payload, loud = current.clip.payloads[i], current.clip.loud[i]
                    if loud:
                        current.last_loud = now
                    i += 1
                    if i >= len(current.clip.payloads):
                        current.done.set()
                        current = None
                else:
                    payload = self.noise[k % n_noise]
                header = struct.pack("!BBHII", 0x80, 0, self._seq, self._ts, self._ssrc)
                self._seq = (self._seq + 1) & 0xFFFF
                self._ts = (self._ts + SAMPLES) & 0xFFFFFFFF
                self._rtp.sendto(header + payload, self.rtp_remote)
                self.packets_sent += 1
        finally:  # hung up, or cancelled by _stop_media: nobody waits for an utterance forever
            if current is not None:
                current.done.set()
            for u in self._queue:
                u.done.set()

    def _stop_media(self) -> None:
        if self._pacer is not None and not self._pacer.done():
            self._pacer.cancel()
        for u in self._queue:
            u.done.set()


def _sdp_media(body: str) -> tuple[str, int] | None:
    """The audio address of an SDP answer (c= and m=audio)."""
    host, port = None, None
    for line in body.splitlines():
        if line.startswith("c=IN IP4 "):
            host = line.split()[-1]
        elif line.startswith("m=audio "):
            port = int(line.split()[1])
    return (host, port) if host and port else None


def encode_clip(pcm8k: bytes, noise_pcm: bytes | None) -> Clip:
    """A clip (s16 at 8 kHz) as PCMU packets, line noise mixed in under it; loud = the clip's own packet level."""
    payloads, loud = [], []
    for off in range(0, len(pcm8k), SAMPLES * 2):
        chunk = pcm8k[off:off + SAMPLES * 2].ljust(SAMPLES * 2, b"\0")
        loud.append(dbfs(chunk) > LOUD_DBFS)
        if noise_pcm:
            n = noise_pcm[off % len(noise_pcm):][:SAMPLES * 2].ljust(SAMPLES * 2, b"\0")
            chunk = audioop.add(chunk, n, 2)
        payloads.append(audioop.lin2ulaw(chunk, 2))
    return Clip(payloads, loud)


def line_noise(level_dbfs: float, seconds: float = 5.0, seed: int = 13) -> bytes:
    """Constant Gaussian line noise at ``level_dbfs`` RMS (s16 at 8 kHz)."""
    import numpy as np

    rms = 32768 * 10 ** (level_dbfs / 20)
    a = np.random.default_rng(seed).normal(0, rms, int(seconds * 8000))
    return np.clip(a, -32768, 32767).astype("<i2").tobytes()


def noise_packets(noise_pcm: bytes | None) -> list[bytes]:
    """The line between utterances as PCMU packets (digital silence when there is no noise)."""
    if not noise_pcm:
        return [ULAW_SILENCE]
    step = SAMPLES * 2
    return [audioop.lin2ulaw(noise_pcm[o:o + step], 2) for o in range(0, len(noise_pcm) - step + 1, step)]
