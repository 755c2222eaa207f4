"""The WebRTC transport for the routes that answer offers (softphone, agent desk, supervisor), loaded on first use.

``ivr.telephony.webrtc`` brings aiortc, PyAV and aioice (~0.15 CPU-s of imports): ``ivr serve`` need not pay that
before it is ready, and a service that never takes a browser call never pays it. The first offer imports it in a
worker thread, so the event loop (other calls' audio) is not held up meanwhile.
"""

from __future__ import annotations

import asyncio
from types import ModuleType

_webrtc: ModuleType | None = None


def _load() -> ModuleType:
    import ivr.telephony.webrtc

    return ivr.telephony.webrtc


async def webrtc() -> ModuleType:
    """The ``ivr.telephony.webrtc`` module (``WebRtcPort``, ``OfferError``, ``ice_hosts_for``)."""
    global _webrtc
    if _webrtc is None:
        _webrtc = await asyncio.to_thread(_load)
    return _webrtc
