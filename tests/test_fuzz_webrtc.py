"""Fuzzing (issue 12): a fixed corpus of nasty WebRTC offers (tests/fuzz_corpus.py: past fuzz findings, broken
bodies), then 1,000 Hypothesis-generated ones, to POST /api/calls/webrtc over real HTTP.

Browser-like offers (opus/G.722/G.711, BUNDLE, data channel) with lines dropped, duplicated, replaced or
damaged, odd ICE credentials and fingerprints, other SDP shapes and broken bodies. Properties: no 5xx but the
deliberate 503 (capacity), no traceback in the log (aiortc's background tasks included), every answer within
10 s; every answered call ends once its caller is gone, and ``/health`` is 200 afterwards. Deeper runs:
``ivr bench fuzz --targets webrtc --cases 10000``.
"""

from __future__ import annotations

from fuzz_corpus import WEBRTC_CORPUS

from ivr.bench.fuzz import run_target

CASES = 1000  # generated, after the corpus: each replacement line is still drawn dozens of times


def test_webrtc_offers_never_answer_5xx_or_hang():
    res = run_target("webrtc", CASES, corpus=WEBRTC_CORPUS)
    assert res.cases >= len(WEBRTC_CORPUS) + CASES, res.summary()
    assert res.crashes == 0 and res.hangs == 0, res.summary()
    assert res.seen.get(200, 0) > 50 and res.seen.get(400, 0) > 200, res.seen  # answered and refused offers
