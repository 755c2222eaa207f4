"""Fuzzing (issue 12): a fixed corpus of odd SDP bodies (tests/fuzz_corpus.py), then 2,000 Hypothesis-generated
ones, straight into the project's SDP functions.

``parse_offer`` (SIP) raises nothing but ``SdpError`` (400/488); an accepted offer gets an answer from
``build_answer`` that serialises with our port and the chosen codec; the WebRTC offer check in front of aiortc
raises nothing but ``OfferError``. (SDP inside INVITEs and WebRTC offers over the wire: test_fuzz_sip.py and
test_fuzz_webrtc.py.)
"""

from __future__ import annotations

from fuzz_corpus import SDP_CORPUS
from hypothesis import strategies as st

from ivr.bench.fuzz import run_target
from ivr.bench.fuzz_harness import Failure, run_cases

CASES = 2000


def test_sdp_parsers_raise_only_their_own_errors():
    res = run_target("sdp", CASES, corpus=SDP_CORPUS)
    assert res.cases >= len(SDP_CORPUS) + CASES, res.summary()
    assert res.crashes == 0 and res.hangs == 0, res.summary()
    seen = res.seen  # both verdicts of both parsers were reached
    assert seen.get("sip ok", 0) > 20 and seen.get("sip 400", 0) > 100 and seen.get("sip 488", 0) > 100, seen
    assert seen.get("webrtc 400", 0) > 100, seen


class _Fragile:
    """A target that breaks on one input: the runner must count it and keep the case, not stop or hide it."""

    name = "fragile"

    def check(self, case: int) -> Failure | None:
        if case % 7 == 3:
            raise ZeroDivisionError("boom")
        return Failure("hang", repr(case), "slow") if case % 11 == 5 else None

    def after(self) -> list[Failure]:
        return [Failure("crash", "after the run", "service gone")]


def test_runner_counts_crashes_and_hangs_and_keeps_going():
    res = run_cases(_Fragile(), st.integers(0, 1000), 300)
    assert res.cases == 300
    assert res.crashes > 10 and res.hangs > 5, res.summary()
    assert any("ZeroDivisionError" in f.detail for f in res.failures)
    assert any(f.detail == "service gone" for f in res.failures)
