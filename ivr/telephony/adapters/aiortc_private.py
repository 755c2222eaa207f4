"""aiortc internals ivr relies on (known good: aiortc 1.16; pyproject pins ``aiortc>=1.16,<2``).

* The audio receiver's jitter buffer holds 4 frames before releasing any (``RTCRtpReceiver.__jitter_buffer``,
  ``JitterBuffer._prefetch``); barge-in wants the caller's voice earlier, and aiortc has no option for it.
* The codecs negotiated on a transceiver (``RTCRtpTransceiver._codecs``), for the call's log and tests.
"""

from __future__ import annotations

from aiortc import RTCRtpReceiver, RTCRtpTransceiver
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from ivr.telephony.adapters import PrivateApiChanged

KNOWN_GOOD = ">=1.16,<2"
_JITTER_ATTR = "_RTCRtpReceiver__jitter_buffer"  # name-mangled ``self.__jitter_buffer``


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
        if not isinstance(getattr(t, "_codecs", None), list):
            raise PrivateApiChanged(f"aiortc: RTCRtpTransceiver has no _codecs list (known good {KNOWN_GOOD})")
    finally:
        await pc.close()
