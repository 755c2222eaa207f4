"""aiortc internals ivr relies on (known good: aiortc 1.16; pyproject pins ``aiortc>=1.16,<2``).

* The audio receiver's jitter buffer holds 4 frames before releasing any (``RTCRtpReceiver.__jitter_buffer``,
  ``JitterBuffer._prefetch``); barge-in wants the caller's voice earlier, and aiortc has no option for it.
* The codecs negotiated on a transceiver (``RTCRtpTransceiver._codecs``), for the call's log and tests.
* When each caller packet arrived (issue 13: a turn's trace starts at the caller's last packet as received):
  the receiver's ``_handle_rtp_packet`` and its RTP timestamp mapper (``RTCRtpReceiver.__timestamp_mapper``,
  whose mapped timestamp becomes the decoded frame's ``pts``) are wrapped by :func:`stamp_arrivals`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiortc import RTCRtpReceiver, RTCRtpTransceiver
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from ivr.telephony.adapters import PrivateApiChanged

KNOWN_GOOD = ">=1.16,<2"
_JITTER_ATTR = "_RTCRtpReceiver__jitter_buffer"  # name-mangled ``self.__jitter_buffer``
_MAPPER_ATTR = "_RTCRtpReceiver__timestamp_mapper"
_KEEP = 256  # arrivals remembered (packets in the jitter buffer and the decoder queue; 5 s of 20 ms audio)


class ArrivalStamps:
    """Arrival (monotonic) of each received audio packet, looked up by the decoded frame's ``pts``."""

    def __init__(self) -> None:
        self._raw: dict[int, float] = {}  # RTP timestamp -> arrival
        self._mapped: dict[int, float] = {}  # the receiver's mapped timestamp (= frame pts) -> arrival

    def arrived(self, timestamp: int) -> None:
        _put(self._raw, timestamp, time.monotonic())

    def mapped(self, timestamp: int, mapped: int) -> None:
        at = self._raw.pop(timestamp, None)
        if at is not None:
            _put(self._mapped, mapped, at)

    def get(self, pts: int | None) -> float | None:
        """When the packet behind a decoded frame arrived; None if unknown (concealment, another codec clock)."""
        return None if pts is None else self._mapped.pop(pts, None)


def _put(d: dict[int, float], key: int, value: float) -> None:
    d.setdefault(key, value)
    if len(d) > _KEEP:
        del d[next(iter(d))]


def stamp_arrivals(receiver: RTCRtpReceiver) -> ArrivalStamps | None:
    """Log the arrival of every RTP packet ``receiver`` gets; None (nothing changed) if this aiortc lacks the
    parts wrapped."""
    mapper = getattr(receiver, _MAPPER_ATTR, None)
    handle: Callable[..., Awaitable[None]] | None = getattr(receiver, "_handle_rtp_packet", None)
    inner_map: Callable[[int], int] | None = getattr(mapper, "map", None)
    if handle is None or inner_map is None:
        return None
    stamps = ArrivalStamps()

    async def handle_rtp_packet(packet: RtpPacketLike, arrival_time_ms: int) -> None:
        stamps.arrived(packet.timestamp)
        await handle(packet, arrival_time_ms)

    def map_timestamp(timestamp: int) -> int:
        mapped = inner_map(timestamp)
        stamps.mapped(timestamp, mapped)
        return mapped

    receiver._handle_rtp_packet = handle_rtp_packet  # type: ignore[method-assign]
    mapper.map = map_timestamp  # type: ignore[union-attr]
    return stamps


class RtpPacketLike(Protocol):
    timestamp: int


def set_jitter_prefetch(receiver: RTCRtpReceiver, prefetch: int) -> bool:
    """Release audio after ``prefetch`` frames; False (nothing changed) if this aiortc has no such buffer."""
    jb = getattr(receiver, _JITTER_ATTR, None)
    if not isinstance(jb, JitterBuffer) or not hasattr(jb, "_prefetch"):
        return False
    jb._prefetch = max(0, prefetch)
    return True


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    """The codecs negotiated on ``transceiver`` (first = the one in use); [] before negotiation."""
    return list(getattr(transceiver, "_codecs", []) or [])


async def check() -> None:
    """Raise :class:`PrivateApiChanged` if the installed aiortc lacks what this module uses."""
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    try:
        t = pc.addTransceiver("audio", direction="sendrecv")
        jb = getattr(t.receiver, _JITTER_ATTR, None)
        if not isinstance(jb, JitterBuffer) or not isinstance(getattr(jb, "_prefetch", None), int):
            raise PrivateApiChanged(f"aiortc: RTCRtpReceiver has no {_JITTER_ATTR} with an int _prefetch "
                                    f"(known good {KNOWN_GOOD})")
        if not callable(getattr(getattr(t.receiver, _MAPPER_ATTR, None), "map", None)):
            raise PrivateApiChanged(f"aiortc: RTCRtpReceiver has no {_MAPPER_ATTR} with map() (known good {KNOWN_GOOD})")
        if not isinstance(getattr(t, "_codecs", None), list):
            raise PrivateApiChanged(f"aiortc: RTCRtpTransceiver has no _codecs list (known good {KNOWN_GOOD})")
    finally:
        await pc.close()
