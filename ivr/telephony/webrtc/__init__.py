"""WebRTC transport: an aiortc peer per caller, signalled by one HTTP POST (see docs/call.md)."""

from ivr.telephony.webrtc.ice import host_addresses, ice_hosts_for
from ivr.telephony.webrtc.peer import BotAudioTrack, OfferError, WebRtcPort

__all__ = ["BotAudioTrack", "OfferError", "WebRtcPort", "host_addresses", "ice_hosts_for"]
