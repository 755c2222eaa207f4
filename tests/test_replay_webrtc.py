"""Acceptance: a shipped fixture passes `ivr replay --via webrtc` against a running `ivr serve` (real aiortc peer,
real server, keypad-only because no Mandarin model is installed here)."""

from __future__ import annotations

import pytest
from browser.server import serve_in_thread

from ivr.config import load_settings
from ivr.replay.loader import load_fixture
from ivr.replay.runner import RunOptions, run_suite
from tests.conftest import ROOT


@pytest.mark.slow
@pytest.mark.live  # the caller hears each reply start (heard_ms) over live WebRTC audio
async def test_dtmf_fixture_passes_over_webrtc(tmp_path):
    fixture = load_fixture(ROOT / "audio_fixtures" / "calls" / "order_status_dtmf_telephone.yaml")
    # the caller hears every prompt out (the keypad menu is ~30 s at 175 wpm): this test is about the WebRTC path
    # and the dialogue, not the speech rate, so the bot speaks at espeak-ng's fastest
    settings = load_settings({"data_dir": str(tmp_path / "data"), "tts_speed": 450})
    with serve_in_thread(settings) as (url, _app):
        suite = await run_suite([fixture], settings, RunOptions(via="webrtc", server=url), target="webrtc")
    (call,) = suite.calls
    assert call.passed, call.all_failures or call.error
    assert call.via == "webrtc" and call.call_id and call.outcome == "self_served" and call.ended_by == "caller"
    keyed = [t for t in call.turns if t.kind == "dtmf"]
    assert [t.asr_mode for t in keyed] == ["dtmf"] * 3
    assert all(t.heard_ms is not None and t.latency_ms is not None for t in keyed)  # both ends measured
    assert "签收" in keyed[-1].reply


async def test_webrtc_without_server_is_a_clear_error(tmp_path):
    import pytest

    from ivr.replay.runner import ReplayUnavailable

    fixture = load_fixture(ROOT / "audio_fixtures" / "calls" / "promotions.yaml")
    with pytest.raises(ReplayUnavailable, match="no `ivr serve` answering at http://127.0.0.1:9"):
        await run_suite([fixture], load_settings(), RunOptions(via="webrtc", server="http://127.0.0.1:9"))
