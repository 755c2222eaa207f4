"""aiortp internals ivr relies on (known good: aiortp 0.8.0, pinned in pyproject).

* Source latching (``ivr.telephony.rtp.latch``) wraps the RTP and RTCP sockets' ``datagram_received`` and keeps
  the session's remote addresses (``_remote_addr``, ``_remote_rtcp_addr``) on the latched peer.
* Keys we send (RFC 4733) go through the session's sender (``_sender``, ``_dtmf_payload_type``).
* Keys we receive: :class:`MarkerAwareDtmfReceiver` replaces the session's ``_dtmf_receiver`` and reads the
  receiver's event state (``_current_timestamp``, ``_end_seen``, ``_current_event``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from aiortp import RTPSession
from aiortp.dtmf import DtmfEvent, DtmfReceiver
from aiortp.packet import RtpPacket

from ivr.telephony.adapters import PrivateApiChanged

log = logging.getLogger(__name__)

KNOWN_GOOD = "==0.8.0"
_SESSION_ATTRS = ("_remote_addr", "_remote_rtcp_addr", "_rtp_transport", "_rtcp_transport", "_sender",
                  "_dtmf_payload_type", "_dtmf_receiver", "_dispatch_dtmf")
_RECEIVER_ATTRS = ("_current_timestamp", "_end_seen", "_current_event")


class DatagramProtocolLike(Protocol):
    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None: ...


class MarkerAwareDtmfReceiver(DtmfReceiver):
    """aiortp's RFC 4733 receiver tells events apart by RTP timestamp only, so a key pressed again with the
    same timestamp (a sender that restarts its event clock, or sipp replaying one pcap per key) was swallowed.
    RFC 4733 §2.5.1.2 marks the first packet of every event: after an event ended, a marked packet (or another
    event code) starts a new one even when the timestamp repeats. Retransmitted end packets stay one key."""

    def handle_packet(self, packet: RtpPacket) -> None:
        if packet.timestamp == self._current_timestamp and self._end_seen:
            try:
                event = DtmfEvent.parse(packet.payload)
            except ValueError:
                return
            if packet.marker or event.event != self._current_event:
                self._current_timestamp = None
        try:
            super().handle_packet(packet)
        except ValueError:  # a short/garbled telephone-event payload
            log.debug("dropped a malformed telephone-event packet")


def use_marker_aware_dtmf(session: RTPSession) -> None:
    """Receive keys through :class:`MarkerAwareDtmfReceiver` (delivered to ``session.on_dtmf`` as before)."""
    session._dtmf_receiver = MarkerAwareDtmfReceiver(session._dispatch_dtmf)


def remote(session: RTPSession, *, rtcp: bool = False) -> tuple[str, int]:
    """Where the session sends RTP (or RTCP)."""
    return session._remote_rtcp_addr if rtcp else session._remote_addr


def set_remote(session: RTPSession, addr: tuple[str, int], *, rtcp: bool = False) -> None:
    """Send RTP (or RTCP) to ``addr`` from now on (the latched peer)."""
    if rtcp:
        session._remote_rtcp_addr = addr
    else:
        session._remote_addr = addr


def socket_protocol(session: RTPSession, *, rtcp: bool = False) -> DatagramProtocolLike:
    """The asyncio datagram protocol of the RTP (or RTCP) socket (its ``datagram_received`` may be wrapped)."""
    return session._rtcp_transport if rtcp else session._rtp_transport


def local_port(session: RTPSession, *, rtcp: bool = False) -> int:
    """The bound local port of the RTP (or RTCP) socket."""
    proto = socket_protocol(session, rtcp=rtcp)
    return int(proto._transport.get_extra_info("sockname")[1])  # type: ignore[attr-defined]


def sends_dtmf(session: RTPSession) -> bool:
    """The session has a telephone-event payload type (keys can be sent)."""
    return session._dtmf_payload_type >= 0


def send_event_packet(session: RTPSession, payload: bytes, timestamp: int, marker: int) -> None:
    """One RFC 4733 telephone-event packet to the remote, on the session's media clock."""
    session._sender.send_raw(session._dtmf_payload_type, payload, timestamp, marker=marker, addr=session._remote_addr)


def media_timestamp(session: RTPSession) -> int:
    """The RTP timestamp the next media packet will carry."""
    return int(session._sender.current_timestamp)


def advance_media_clock(session: RTPSession) -> None:
    """One packet time passed without media (a telephone-event took its place)."""
    session._sender.advance_timestamp()


def set_jitter_prefetch(session: RTPSession, frames: int) -> None:
    """Hold ``frames`` complete frames in the session's jitter buffer before delivering the oldest (its reorder
    window; aiortp fixes it at creation)."""
    session._jitter_buffer._prefetch = max(0, frames)


async def check() -> None:
    """Raise :class:`PrivateApiChanged` if the installed aiortp lacks what this module uses."""
    session = await RTPSession.create(local_addr=("127.0.0.1", 0), remote_addr=("127.0.0.1", 9), payload_type=0,
                                      dtmf_payload_type=101)
    try:
        missing = [a for a in _SESSION_ATTRS if not hasattr(session, a)]
        missing += [f"DtmfReceiver.{a}" for a in _RECEIVER_ATTRS if not hasattr(session._dtmf_receiver, a)]
        if not isinstance(getattr(getattr(session, "_jitter_buffer", None), "_prefetch", None), int):
            missing.append("_jitter_buffer._prefetch")
        sender = getattr(session, "_sender", None)
        missing += [f"_sender.{a}" for a in ("send_raw", "current_timestamp", "advance_timestamp")
                    if not hasattr(sender, a)]
        rtp = getattr(session, "_rtp_transport", None)
        if not hasattr(rtp, "datagram_received") or not hasattr(getattr(rtp, "_transport", None), "get_extra_info"):
            missing.append("_rtp_transport._transport")
        if missing:
            raise PrivateApiChanged(f"aiortp: RTPSession has no {', '.join(missing)} (known good {KNOWN_GOOD})")
        await asyncio.sleep(0)
    finally:
        await session.close()
