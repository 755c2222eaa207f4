"""A real aiortc WebRTC offer (audio, one loopback host candidate) for tests that only need its SDP."""

from __future__ import annotations

from aiortc import RTCPeerConnection

from ivr.telephony.webrtc.ice import host_addresses


async def offer_sdp() -> str:
    """The SDP of a fresh audio offer; the peer connection is closed again (nobody will answer it)."""
    pc = RTCPeerConnection()
    pc.addTransceiver("audio")
    with host_addresses(("127.0.0.1",)):
        await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp
