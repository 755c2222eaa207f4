"""One answered SIP call as a :class:`ivr.call.ports.CallPort`.

Audio crosses the port at :data:`PORT_RATE` (16 kHz, the rate of the whole speech pipeline, as WebRTC
uses); the call resamples to and from G.711's 8 kHz with streaming polyphase resamplers, so the session never
learns which transport it talks to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiosipua import transaction as sip_timers
from aiosipua.incoming_call import IncomingCall

from ivr.audio.frames import AudioFrame
from ivr.audio.resample import RateConverter, Resampler
from ivr.call.ports import CallInfo, CallPort, InboundEvent
from ivr.events import DtmfDigits, Hangup
from ivr.telephony.adapters import aiosipua_private as sip_private
from ivr.telephony.rtp.stream import G711_RATE, RtpStream

if TYPE_CHECKING:
    from ivr.telephony.sip.ua import GatewayUAS

log = logging.getLogger(__name__)

PORT_RATE = 16000
MAX_INBOUND_FRAMES = 3000  # 60 s of caller audio if the session stalls; older frames are dropped
TRANSFER_TIMEOUT_S = 30.0


class SipCall(CallPort):
    """CallPort of one SIP dialog (inbound via the gateway, or an outbound leg it dialled)."""

    reports_on_air = True  # a frame's ``meta["on_air"]`` is called when its RTP packet is sent

    def __init__(self, info: CallInfo, call: IncomingCall, stream: RtpStream, ua: GatewayUAS,
                 on_closed: Callable[[SipCall], Awaitable[None] | None] | None = None) -> None:
        self.info = info
        self.sip = call
        self.stream = stream
        self.ua = ua
        self._on_closed = on_closed
        self._events: asyncio.Queue[InboundEvent] = asyncio.Queue()
        self._up = Resampler(G711_RATE, PORT_RATE)
        self._down = RateConverter(G711_RATE)
        self._in_samples = 0  # 16 kHz samples passed to the session
        self._in_g711 = 0  # 8 kHz samples received
        self._packet_ends: deque[tuple[int, float | None]] = deque(maxlen=64)  # (8 kHz samples to its end, arrival)
        self._hangup: Hangup | None = None
        self._acked = asyncio.Event()  # the caller's ACK came (set at once for legs we dialled)
        self._acked.set()
        self._hold_after_ack = False
        self._transfer: asyncio.Future[int] | None = None
        self.started = time.monotonic()
        self.dtmf_received = ""
        self.transferred_to = ""
        stream.on_pcm = self._on_pcm
        stream.on_dtmf = self.push_dtmf

    # --- CallPort ---------------------------------------------------------------------------------------
    async def recv(self) -> InboundEvent:
        if self._hangup is not None and self._events.empty():
            return self._hangup
        return await self._events.get()

    async def send_audio(self, frame: AudioFrame) -> None:
        if self._hangup is not None:
            return
        on_air = frame.meta.get("on_air")
        frame = self._down(frame)
        if frame.pcm:
            await self.stream.send_pcm(frame.pcm, on_sent=on_air)

    def flush(self) -> None:
        """Barge-in: drop the bot audio still queued for RTP, so the caller stops hearing it now."""
        self.stream.clear()

    async def send_dtmf(self, digit: str) -> bool:
        """Press a key towards the peer as an RFC 4733 telephone-event (a caller leg: replay, tests)."""
        if self._hangup is not None:
            return False
        return self.stream.send_dtmf(digit)

    async def hangup(self, reason: str = "") -> None:
        """Send BYE (retransmitted until answered, in the background) and release media. Idempotent."""
        if self._hangup is not None:
            return
        if self.sip.dialog.state.value == "confirmed":
            self._send_bye()
        await self._close(Hangup("bot", reason or "bot hung up", time.monotonic()))

    async def transfer(self, target: str) -> bool:
        """Blind transfer by REFER (RFC 3515). True once the target answered (NOTIFY sipfrag 2xx); the bot
        then leaves with BYE. False if refused or failed: the call stays up for the session to recover."""
        if self._hangup is not None or self.sip.dialog.state.value != "confirmed":
            return False
        uri = self._target_uri(target)
        self.stream.clear()
        addr = self.ua.advertised_addr or self.ua.transport.local_addr
        req = self.sip.dialog.create_request("REFER", via_host=addr[0], via_port=addr[1],
                                             via_transport=self._via_transport())
        req.headers.set_single("Refer-To", f"<{uri}>")
        req.headers.set_single("Referred-By", f"<{self.sip.dialog.local_uri}>")
        req.headers.set_single("Contact", f"<sip:{addr[0]}:{addr[1]}>")
        self._transfer = asyncio.get_running_loop().create_future()
        try:
            resp = await self.ua.request(req, self.sip.source_addr)
            if resp is None or not 200 <= resp.status_code < 300:
                log.info("REFER refused: %s", resp.status_code if resp else "timeout")
                return False
            try:
                status = await asyncio.wait_for(asyncio.shield(self._transfer), TRANSFER_TIMEOUT_S)
            except TimeoutError:
                log.info("transfer to %s: no final NOTIFY in %.0f s", uri, TRANSFER_TIMEOUT_S)
                return False
            if not 200 <= status < 300:
                log.info("transfer to %s failed: %s", uri, status)
                return False
            self.transferred_to = uri
            await self.hangup("transferred")
            return True
        finally:
            self._transfer = None

    # --- events from the gateway -------------------------------------------------------------------------
    def push_dtmf(self, digit: str) -> None:
        if self._hangup is None and digit:
            self.dtmf_received += digit
            self._events.put_nowait(DtmfDigits(digit, time.monotonic()))

    def transfer_progress(self, status: int) -> None:
        """A NOTIFY sipfrag status for our REFER."""
        if self._transfer is not None and not self._transfer.done() and status >= 200:
            self._transfer.set_result(status)

    async def no_ack(self) -> None:
        """Our 2xx got no ACK within 64*T1: the session ends with a BYE (RFC 3261 13.3.1.4), the line is free."""
        if self._hangup is None:
            self._send_bye()
        await self._close(Hangup("system", "no_ack", time.monotonic()))

    async def remote_hangup(self, by: str, reason: str) -> None:
        """The peer sent BYE (or the dialog died: ACK/session timeout)."""
        await self._close(Hangup(by, reason, time.monotonic()))

    @property
    def closed(self) -> bool:
        return self._hangup is not None

    # --- internals -------------------------------------------------------------------------------------------
    def _on_pcm(self, pcm: bytes) -> None:
        """One decoded packet: resample, and pass the result on in 20 ms frames, each stamped (``meta["rx_at"]``)
        with the arrival of the packet that carried its last sample. The streaming resampler (polyphase FIR, exact
        output per packet) adds only its filter delay of a few ms, which the turn trace's first stage includes."""
        if self._hangup is not None:
            return
        self._in_g711 += len(pcm) // 2
        self._packet_ends.append((self._in_g711, self.stream.last_rx_at))
        data = self._up.process(AudioFrame(pcm, G711_RATE)).pcm
        step = 2 * PORT_RATE // 50
        for off in range(0, len(data), step):
            chunk = data[off:off + step]
            frame = AudioFrame(chunk, PORT_RATE, self._in_samples / PORT_RATE)
            self._in_samples += len(chunk) // 2
            rx = self._arrival_of(self._in_samples - 1)
            if rx is not None:
                frame.meta["rx_at"] = rx
            if self._events.qsize() >= MAX_INBOUND_FRAMES:
                with contextlib.suppress(asyncio.QueueEmpty):
                    self._events.get_nowait()
            self._events.put_nowait(frame)

    def _arrival_of(self, sample: int) -> float | None:
        """Arrival of the packet holding 16 kHz output ``sample`` (output sample n is input time n / PORT_RATE
        less the resampler's filter delay); None if unknown (concealment, or older than kept)."""
        src = max(0, round((sample / PORT_RATE - self._up.delay_s) * G711_RATE))
        for end, rx in self._packet_ends:
            if src < end:
                return rx
        return None

    def _send_bye(self) -> None:
        addr = self.ua.advertised_addr or self.ua.transport.local_addr
        bye = self.sip.dialog.create_request("BYE", via_host=addr[0], via_port=addr[1],
                                             via_transport=self._via_transport())
        self.sip.dialog.terminate()
        sip_private.stop_retransmissions(self.sip)
        sip_private.forget_call(self.ua, self.sip.call_id)
        task = asyncio.get_running_loop().create_task(self.ua.request(bye, self.sip.source_addr))
        _background.add(task)
        task.add_done_callback(_background.discard)

    def _via_transport(self) -> str:
        return "TCP" if getattr(self.ua.transport, "reliable", False) else "UDP"

    def _target_uri(self, target: str) -> str:
        t = target.strip().strip("<>")
        if t.startswith(("sip:", "sips:", "tel:")):
            return t
        host, port = self.sip.source_addr
        return f"sip:{t}@{host}:{port}"

    def hold_until_ack(self, hold: bool) -> None:
        """Inbound: send nothing until the caller's ACK, then ``hold`` (the offer's direction). An INVITE from a
        forged Via naming someone else's c= is never ACKed, so it draws no RTP there (no reflection)."""
        self._hold_after_ack = hold
        self.stream.set_hold(True)
        self._acked.clear()

    def ack(self) -> None:
        """The ACK confirmed the dialog: media may flow."""
        if not self._acked.is_set():
            self.stream.set_hold(self._hold_after_ack)
            self._acked.set()

    async def wait_ack(self, timeout: float | None = None) -> None:
        """Until the ACK (or the call ended: CANCEL, BYE). No ACK within ``timeout`` (default 64*T1, Timer H) ends the
        call with a BYE: over UDP aiosipua's 2xx retransmission gives up at the same time, over TCP (no 2xx
        retransmission: sipp and others take a repeated 200 on a stream for an error) nothing else would, and a
        half-open INVITE kept its line for good."""
        try:
            await asyncio.wait_for(self._acked.wait(), sip_timers.TIMER_H if timeout is None else timeout)
        except TimeoutError:
            await self.no_ack()

    async def _close(self, event: Hangup) -> None:
        if self._hangup is not None:
            return
        self._hangup = event
        self._acked.set()  # a handler waiting for the ACK goes on (and finds the call over)
        self._events.put_nowait(event)
        if self._transfer is not None and not self._transfer.done():
            self._transfer.set_result(487)
        await self.stream.close()
        if self._on_closed is not None:
            res = self._on_closed(self)
            if asyncio.iscoroutine(res):
                await res


_background: set[asyncio.Task] = set()
