"""The shipped fixture suite (audio_fixtures/): valid, covering every flow, and reproducible from the script."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ivr.audio import g711
from ivr.audio.files import read_audio
from ivr.replay.loader import load_suite
from tests.conftest import ROOT

SUITE = ROOT / "audio_fixtures"

# The dialogue flows of issue 3 and the unhappy paths the suite must exercise (by fixture tag).
REQUIRED_TAGS = {
    "order_status", "logistics", "return_request", "exchange_request", "refund_status", "cancel_order",
    "change_address", "invoice", "price_promotion", "product_question", "complaint", "human_agent",
    "verification", "dtmf", "csat", "not_found", "not_eligible", "not_allowed", "deny", "sentiment", "no_input",
    "no_match", "barge_in", "backchannel", "pause", "noise", "telephone", "repeat", "main_menu",
}


@pytest.fixture(scope="module")
def suite():
    return load_suite(SUITE)


def test_suite_loads_and_covers_every_flow(suite):
    assert len(suite) >= 25
    tags = {t for lf in suite for t in lf.fixture.tags}
    assert REQUIRED_TAGS <= tags, f"flows without a fixture: {sorted(REQUIRED_TAGS - tags)}"
    for lf in suite:
        fx = lf.fixture
        assert fx.turns and any(t.expect is not None for t in fx.turns) or fx.expect.actions, fx.name
        for i, t in enumerate(fx.turns):
            if t.kind == "say":
                assert t.text and t.text.strip(), f"{fx.name} turns[{i}] has no reference transcript"
                clip = lf.clips[i]
                assert 0 <= clip.speech_start_s < clip.speech_end_s <= clip.audio.duration


def test_suite_has_varied_voices_speeds_and_lines(suite):
    durations = {}
    for lf in suite:
        for i, clip in lf.clips.items():
            durations[(lf.name, i)] = clip.speech_end_s - clip.speech_start_s
    assert {lf.fixture.line for lf in suite} == {"wideband", "telephone"}
    assert any(lf.background is not None for lf in suite)
    assert any(t.barge_in_at is not None for lf in suite for t in lf.fixture.turns)
    assert any(t.wait >= 4 for lf in suite for t in lf.fixture.turns), "a caller who pauses before answering"
    assert any(t.kind == "silence" for lf in suite for t in lf.fixture.turns)
    assert min(durations.values()) < 0.3, "a backchannel shorter than the barge-in minimum"


def test_telephone_fixtures_are_8khz_g711(suite):
    tel = [lf for lf in suite if lf.fixture.line == "telephone"]
    assert tel
    for lf in tel:
        assert lf.sample_rate == 8000
        for t in lf.fixture.turns:
            if t.say is None:
                continue
            audio = read_audio(lf.path.parent / t.say, rate=None)
            assert audio.sample_rate == 8000
            # every sample sits on the mu-law grid: a G.711 round trip changes nothing
            again = g711.ulaw_decode(g711.ulaw_encode(audio))
            assert np.array_equal(again.to_numpy(), audio.to_numpy())


def test_fixtures_use_documented_demo_orders(suite):
    from ivr.services.shop.seed import DEMO_CUSTOMERS, FIXED_ORDERS

    phones = {c[1] for c in DEMO_CUSTOMERS.values()}
    known_callers = {lf.fixture.caller_id for lf in suite} - {""}
    assert known_callers & phones
    dtmf_orders = {t.dtmf.rstrip("#") for lf in suite for t in lf.fixture.turns if t.dtmf and len(t.dtmf) > 8}
    assert dtmf_orders <= set(FIXED_ORDERS)


def test_generator_is_deterministic_and_committed_files_are_current():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_fixtures.py"), "--check"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "up to date" in r.stdout


# Every way of answering the clarifying question (ivr/dialog/clarify.py), and the two-need utterances.
CLARIFY_PATHS = {"clarify_by_name", "clarify_by_position", "clarify_by_key", "clarify_neither", "clarify_unclear",
                 "clarify_new_request"}


def test_a_fixture_per_clarification_path_and_two_need_utterance(suite):
    """The unsure first utterance of each clarify fixture is asked about; each two-need utterance names both needs
    (the replay itself runs with the whole suite in tests/test_replay_run.py)."""
    from ivr.dialog.nlu import clarify_of, get_nlu, second_need_of

    nlu = get_nlu("zh-CN")
    tags = {t for lf in suite for t in lf.fixture.tags}
    assert tags >= CLARIFY_PATHS, f"clarification paths without a fixture: {sorted(CLARIFY_PATHS - tags)}"
    seen_pairs = set()
    for lf in suite:
        fx = lf.fixture
        first = next((t for t in fx.turns if t.kind == "say"), None)
        if first is None:
            continue
        r = nlu.parse(first.text)
        if "clarify" in fx.tags:
            assert len(clarify_of(r)) == 2, (fx.name, r.intent, r.confidence)
            assert first.expect is not None and first.expect.state == "clarify", fx.name
            assert "return_created" in fx.expect.no_actions, fx.name
        if "two_needs" in fx.tags:
            second = second_need_of(r)
            assert second and r.intent in fx.tags and second in fx.tags and not clarify_of(r), (fx.name, r.intent)
            assert any(t.expect and "second_need_offered" in t.expect.actions for t in fx.turns), fx.name
            seen_pairs.add((r.intent, second))
    assert len(seen_pairs) >= 3, seen_pairs
