"""Short version of `ivr bench sip`: several overlapping sipp calls with audio, none fails, none leaks."""

from __future__ import annotations

import pytest

from ivr.bench.sip import run_load


@pytest.mark.live_light  # counts real-time RTP: at nice 19 beside the live lane one call once got 38 of 150 frames
async def test_sipp_load_smoke(tmp_path):
    r = await run_load(calls=6, rate=3.0, seconds=3.0, workdir=tmp_path)
    assert r["sipp_rc"] == 0 and r["successful"] == 6 and r["failed"] == 0, r["sipp_tail"]
    assert r["answered"] == 6 and r["open_calls_after"] == 0
    assert r["peak_open_calls"] >= 2  # the calls really overlapped
    # every call's caller audio reached the bot (3 s = 150 frames; the jitter buffer holds back a few)
    assert r["frames_received_per_call_min"] >= 0.8 * r["frames_expected_per_call"]


async def test_sipp_load_through_the_real_bot(tmp_path):
    """The same load with every call run by the real CallManager (session, VAD, dialogue, TTS, records)."""
    r = await run_load(calls=4, rate=2.0, seconds=5.0, workdir=tmp_path, bot="real")
    assert r["sipp_rc"] == 0 and r["successful"] == 4 and r["failed"] == 0, r["sipp_tail"]
    assert r["open_calls_after"] == 0 and r["peak_open_calls"] >= 2
    assert r["records"] == 4 and r["greeted"] == 4, r  # every caller heard the greeting start
    assert r["turn_latency_p50_ms"] is not None
