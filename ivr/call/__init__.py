"""The life of one call, independent of how it arrived (SIP, WebRTC, in-process replay)."""
