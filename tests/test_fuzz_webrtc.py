"""Fuzzing (issue 12): 2,000 Hypothesis-generated WebRTC offers to POST /api/calls/webrtc over real HTTP.

Browser-like offers (opus/G.722/G.711, BUNDLE, data channel) with lines dropped, duplicated, replaced or
damaged, odd ICE credentials and fingerprints, other SDP shapes and broken bodies. Properties: no 5xx but the
deliberate 503 (capacity), no traceback in the log (aiortc's background tasks included), every answer within
10 s; every answered call ends once its caller is gone, and ``/health`` is 200 afterwards.
"""

from __future__ import annotations

from ivr.bench.fuzz import run_target

CASES = 2000


def test_webrtc_offers_never_answer_5xx_or_hang():
    res = run_target("webrtc", CASES)
    assert res.cases >= CASES, res.summary()
    assert res.crashes == 0 and res.hangs == 0, res.summary()
    assert res.seen.get(200, 0) > 50 and res.seen.get(400, 0) > 200, res.seen  # answered and refused offers
