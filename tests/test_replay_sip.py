"""Acceptance: a shipped keypad fixture passes `ivr replay --via sip` against a running `ivr serve --sip-port N`.

The caller is the project's own SIP UA (ivr/telephony/sip as UAC): paced G.711 RTP out, keys as RFC 4733
telephone-events, the bot's RTP decoded and timed; the server is the real app (real CallManager, dialogue, demo
shop, espeak-ng), keypad-only because no Mandarin model is installed here. A carrier trunk cannot exist in this
sandbox; the client speaks to the gateway directly on loopback, as a PBX would.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from browser.server import serve_in_thread

from ivr.config import load_settings
from ivr.replay.loader import load_fixture
from ivr.replay.runner import ReplayUnavailable, RunOptions, run_suite
from tests.conftest import ROOT

FIXTURE = ROOT / "audio_fixtures" / "calls" / "order_status_dtmf_telephone.yaml"
# The caller listens to every prompt to its end (the keypad menu is ~30 s at the default 175 wpm); these tests
# are about the SIP path and the dialogue, not the speech rate, so the bot speaks at espeak-ng's fastest.
FAST_SPEECH = {"tts_speed": 450}


@pytest.mark.slow
async def test_keypad_fixture_passes_over_sip(tmp_path, law="PCMA"):
    fixture = load_fixture(FIXTURE)
    settings = load_settings({"data_dir": str(tmp_path / "data"), **FAST_SPEECH})
    with serve_in_thread(settings, sip=True) as (url, app):
        codecs = [law, "PCMA" if law == "PCMU" else "PCMU"]
        suite = await run_suite([fixture], settings, RunOptions(via="sip", server=url, sip_codecs=codecs),
                                target="sip")
        gw = app.state.sip
        assert gw.open_calls == 0 and app.state.calls.active == 0
        (rec,) = [r for r in app.state.calls.records.values()]
    (call,) = suite.calls
    assert call.passed, call.all_failures or call.error
    assert call.via == "sip" and call.call_id == rec.call_id and call.call_id.startswith("sip-")
    assert call.outcome == "self_served" and call.ended_by == "caller"
    assert rec.channel == "sip" and rec.caller == ""  # a withheld number (From: anonymous) stays withheld
    keyed = [t for t in call.turns if t.kind == "dtmf"]
    assert [t.asr_mode for t in keyed] == ["dtmf"] * 3
    assert [t.caller_text for t in rec.turns if t.kind == "dtmf"] == ["1", "100000000007#", "****"]  # the tail is masked in records
    assert all(t.heard_ms is not None and t.latency_ms is not None for t in keyed)  # both ends measured
    assert "签收" in keyed[-1].reply
    assert any(f"SIP {law} to sip:ivr@127.0.0.1:{gw.port}" in n and "keys 1100000000007#5678 sent" in n for n in call.notes), call.notes


@pytest.mark.slow
def test_cli_replay_via_sip_against_a_running_server(tmp_path):
    """The CLI end to end, offering mu-law first (the API test above offers A-law)."""
    settings = load_settings({"data_dir": str(tmp_path / "data"), **FAST_SPEECH})
    with serve_in_thread(settings, sip=True) as (url, app):
        out = tmp_path / "sip.json"
        r = subprocess.run([sys.executable, "-m", "ivr", "replay", str(FIXTURE), "--via", "sip", "--server", url,
                            "--sip", f"127.0.0.1:{app.state.sip.port}", "--sip-codec", "PCMU", "--output", str(out), "--no-progress"],
                           capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    (call,) = data["calls"]
    assert data["passed"] and data["via"] == "sip" and call["via"] == "sip", call["failures"]
    assert any("SIP PCMU to" in n for n in call["notes"]), call["notes"]


async def test_sip_replay_needs_a_server_with_sip(tmp_path):
    fixture = load_fixture(FIXTURE)
    settings = load_settings({"data_dir": str(tmp_path / "data")})
    with pytest.raises(ReplayUnavailable, match="no `ivr serve` answering at http://127.0.0.1:9"):
        await run_suite([fixture], settings, RunOptions(via="sip", server="http://127.0.0.1:9"))
    with serve_in_thread(settings) as (url, _app):  # sip_port 0
        with pytest.raises(ReplayUnavailable, match="has SIP disabled"):
            await run_suite([fixture], settings, RunOptions(via="sip", server=url))
