"""Fuzzing (issue 12): a fixed corpus of nasty SIP messages (tests/fuzz_corpus.py: past fuzz findings and the
well-known odd shapes), then 1,000 Hypothesis-generated ones, over real UDP and TCP sockets to the SIP gateway of the
real service (``create_app`` under uvicorn, gateway started by the app's lifespan as in ``ivr serve``).

New calls and in-dialog requests on a live call (re-INVITE, INFO, BYE, ...), well-formed-but-odd and malformed
(compact and folded headers, odd URIs and tags, bad CSeq/Max-Forwards/Content-Length, SDP of every shape, byte
damage, random bytes). Properties: no 5xx but the deliberate 503/505/513 (and RFC 3261's 500 for a CSeq that went
backwards in a dialog), no traceback or error in the service's log, an OPTIONS probe answered after every case
and every INVITE that got a provisional answer gets a final one (no hangs); afterwards OPTIONS is answered over
UDP and TCP, every call is closed and ``/health`` is 200 (``after`` checks, counted as crashes/hangs).
Deeper runs: ``ivr bench fuzz --targets sip --cases 10000``.
"""

from __future__ import annotations

import httpx
from fuzz_corpus import SIP_CORPUS

from ivr.bench.fuzz_harness import LogWatch, run_cases, serve_app
from ivr.bench.fuzz_inputs import sip_messages
from ivr.bench.fuzz_sip import SipTarget

CASES = 1000  # generated, after the corpus: each odd header value and method is still drawn dozens of times


def test_sip_messages_never_crash_or_hang_the_gateway():
    with LogWatch() as watch, serve_app(sip=True) as (url, app):
        watch.take()
        target = SipTarget(app, watch)
        res = run_cases(target, sip_messages(), CASES, corpus=SIP_CORPUS)
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    assert res.cases >= len(SIP_CORPUS) + CASES, res.summary()
    assert res.crashes == 0 and res.hangs == 0, res.summary()
    seen = res.seen
    # the run reached the interesting paths: calls answered, refusals of each kind, in-dialog answers
    assert seen.get(200, 0) > 5 and seen.get(400, 0) > 50 and seen.get(488, 0) > 20 and seen.get(481, 0) > 20, seen
