"""Call records: masked at write time, idempotent writes, read back intact, purge by age (real SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from ivr.services.db import transaction
from ivr.services.migrate import ensure_schema, head_revision
from ivr.services.records import CallRecord, RecordStore
from ivr.services.records.masking import caller_key
from ivr.services.records.tables import CallRow, TurnRow


@pytest.fixture()
def store(tmp_path) -> RecordStore:
    url = f"sqlite:///{tmp_path / 'rec.db'}"
    ensure_schema(url)
    return RecordStore(url)


def _record(call_id: str = "c1", started: datetime | None = None) -> CallRecord:
    rec = CallRecord(call_id=call_id, channel="webrtc", caller="13812345678", caller_key=caller_key("13812345678"),
                     started_at=started or datetime.now(UTC))
    rec.add_turn("start", bot_text="您好，这里是客服中心。")
    rec.add_turn("speech", caller_text="我的手机是13812345678，查一下订单", input_source="asr", asr_confidence=0.8,
                 bot_text="好的，请说订单号。", intent="order_status", confidence=0.9,
                 slots={"phone": "13812345678", "receiver_name": "张伟", "address": "浙江省杭州市西湖区文三路90号",
                        "order_id": "202411230001"},
                 latency_ms=640.0, timing={"speech_end": 0.0, "first_audio_sent": 640.0}, sentiment=-0.2)
    rec.ended_at = rec.started_at + timedelta(seconds=42)
    rec.outcome, rec.end_reason, rec.ended_by = "self_served", "caller_hangup", "caller"
    return rec


def test_round_trip_is_masked(store):
    store.save(_record())
    got = store.get("c1")
    assert got is not None and got.outcome == "self_served" and got.handle_time_s == pytest.approx(42)
    assert got.caller == "138****"
    t = got.turns[1]
    assert "13812345678" not in t.caller_text and "138****" in t.caller_text and "5678" not in t.caller_text
    assert t.slots["phone"] == "138****" and t.slots["receiver_name"] == "张*"
    assert "文三路" not in t.slots["address"] and t.slots["order_id"] == "202411230001"
    assert t.intent == "order_status" and t.latency_ms == 640.0 and t.timing["first_audio_sent"] == 640.0
    assert [x.kind for x in got.turns] == ["start", "speech"]
    # nothing in the database holds the number in clear
    with transaction(store.url) as s:
        dump = " ".join(str(v) for r in s.execute(select(TurnRow)).scalars() for v in vars(r).values())
    assert "13812345678" not in dump


def test_save_twice_replaces(store):
    rec = _record()
    rec.outcome = "in_progress"
    store.save(rec)
    rec.add_turn("dtmf", caller_text="1", input_source="dtmf", bot_text="再见")
    rec.outcome = "abandoned"
    store.save(rec)
    store.save(rec)
    with transaction(store.url) as s:
        assert s.scalar(select(func.count()).select_from(CallRow)) == 1
        assert s.scalar(select(func.count()).select_from(TurnRow)) == 3
    assert store.get("c1").outcome == "abandoned"


def test_unknown_outcome_rejected(store):
    rec = _record()
    rec.outcome = "great"
    with pytest.raises(ValueError, match="unknown outcome"):
        store.save(rec)
    assert store.get("c1") is None


def test_feedback_and_purge(store):
    now = datetime.now(UTC)
    old, new = _record("old", now - timedelta(days=100)), _record("new", now - timedelta(days=1))
    old.recording_path = "/tmp/x/old.wav"
    store.save(old)
    store.save(new)
    assert store.set_feedback("new", csat=5, feedback="很好，电话13812345678")
    assert not store.set_feedback("nope", csat=3)
    with pytest.raises(ValueError):
        store.set_feedback("new", csat=9)
    assert store.get("new").csat == 5 and "13812345678" not in store.get("new").feedback
    assert store.purge_before(now - timedelta(days=90)) == ["/tmp/x/old.wav"]
    assert store.get("old") is None and store.get("new") is not None
    assert [r.call_id for r in store.recent()] == ["new"]


def test_single_migration_head():
    assert head_revision()  # raises when two branches were left unmerged


def test_caller_key_is_stable_and_not_the_number():
    k = caller_key("+86 138-1234-5678")
    assert k == caller_key("8613812345678") and "5678" not in k and caller_key("") == ""


def test_identifiers_are_kept_whole_but_a_mobile_under_an_id_key_is_masked():
    """A random RMA such as 860451709776 reads like +86 0451 landline to the free-text masker: identifiers are
    kept whole; a mobile number said where an id was asked is still masked; free text keeps its masking."""
    from ivr.services.records.masking import mask_slots

    out = mask_slots({"rma_id": "860451709776", "order_id": "100000000002", "ticket_id": "T-2026-0001",
                      "call_id": "13800138000", "note": "回电 860451709776"})
    assert out["rma_id"] == "860451709776" and out["order_id"] == "100000000002"
    assert out["ticket_id"] == "T-2026-0001"
    assert out["call_id"] != "13800138000"  # a mobile number under an id key: masked
    assert "860451709776" not in out["note"]
