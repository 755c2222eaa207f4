"""`ivr records purge|export|stats`, `ivr feedback export`, `ivr chat` storing its record, and the scheduled purge
inside `ivr serve` (the real app under uvicorn)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from browser.server import serve_in_thread
from test_records_stats import make, records

from ivr.cli import main
from ivr.config import load_settings
from ivr.services.migrate import ensure_schema
from ivr.services.records import RecordStore

pytestmark = pytest.mark.timeout(180)


def _aged(cid: str, days: float, rec_dir, store: RecordStore):
    rec = make(cid, 0, 5, "self_served")
    rec.started_at = datetime.now(UTC) - timedelta(days=days)
    rec.ended_at = rec.started_at + timedelta(seconds=5)
    path = rec_dir / f"{cid}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF")
    rec.recording_path = str(path)
    store.save(rec)
    return path


def test_purge_cli_dry_run_then_real(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    ensure_schema(db)
    store = RecordStore(db)
    files = {cid: _aged(cid, days, tmp_path / "rec", store) for cid, days in (("old", 40), ("mid", 20), ("new", 1))}
    assert main(["records", "purge", "--older-than-days", "30", "--dry-run", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "would delete 1 call records and 1 recordings" in out and "  old" in out
    assert store.get("old") is not None and files["old"].exists()
    assert main(["records", "purge", "--older-than-days", "10", "--json", "--db", db]) == 0
    res = json.loads(capsys.readouterr().out)
    assert sorted(res["call_ids"]) == ["mid", "old"] and res["files"] == 2 and not res["dry_run"]
    assert [store.get(c) is None for c in ("old", "mid", "new")] == [True, True, False]
    assert not files["old"].exists() and not files["mid"].exists() and files["new"].exists()
    assert main(["records", "purge", "--older-than-days", "0", "--db", db]) == 2


def test_purge_cli_defaults_to_retention_days(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IVR_RETENTION_DAYS", "5")
    from ivr.config import get_settings

    get_settings.cache_clear()
    db = f"sqlite:///{tmp_path / 'r.db'}"
    ensure_schema(db)
    store = RecordStore(db)
    _aged("six", 6, tmp_path / "rec", store)
    _aged("four", 4, tmp_path / "rec", store)
    assert main(["records", "purge", "--db", db]) == 0
    assert "(5 days)" in capsys.readouterr().out
    assert store.get("six") is None and store.get("four") is not None


def test_export_csv_and_stats_cli(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    ensure_schema(db)
    store = RecordStore(db)
    for r in records():
        store.save(r)
    out_file = tmp_path / "calls.csv"
    assert main(["records", "export", "--csv", "-o", str(out_file), "--db", db]) == 0
    assert "wrote 6 call records" in capsys.readouterr().err
    rows = list(csv.DictReader(io.StringIO(out_file.read_text(encoding="utf-8"))))
    assert [r["call_id"] for r in rows] == ["a5", "a4", "a3", "a2", "a1", "a6"]  # oldest first
    assert rows[4]["caller"] == "138****" and rows[4]["csat"] == "5"
    assert main(["records", "export", "--csv", "--channel", "sip", "--db", db]) == 0
    assert [r["call_id"] for r in csv.DictReader(io.StringIO(capsys.readouterr().out))] == ["a4", "a3"]
    assert main(["records", "stats", "--period", "all", "--json", "--db", db]) == 0
    assert json.loads(capsys.readouterr().out)["kpis"]["calls"] == 5
    assert main(["records", "stats", "--period", "soon", "--db", db]) == 2


def test_channel_groups_offers_and_webhook_ids_on_the_command_line(tmp_path, capsys):
    from test_stats_channels import RECORDS

    from ivr.services.channels.replay import SeenMessages

    db = f"sqlite:///{tmp_path / 'r.db'}"
    ensure_schema(db)
    store = RecordStore(db)
    now = datetime.now(UTC)
    for r in RECORDS:  # moved to the last hours (the "old" one stays 9 days back)
        shift = now - datetime(2024, 6, 12, 4, 0, tzinfo=UTC)
        store.save(dataclasses.replace(r, started_at=r.started_at + shift,
                                       ended_at=r.ended_at + shift if r.ended_at else None))
    assert main(["records", "export", "--csv", "--channel", "chat", "--db", db]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert sorted(r["call_id"] for r in rows) == ["c1", "c2", "c3", "live"]
    c1 = next(r for r in rows if r["call_id"] == "c1")
    assert (c1["channel"], c1["channel_group"], c1["offer"], c1["offer_result"]) == ("webchat", "chat", "restock",
                                                                                       "accepted")
    assert main(["records", "stats", "--period", "7d", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "offers 5, accepted 3 (60.0%)" in out
    assert "voice-sip     calls 3, containment 66.7%, transfer 33.3%, CSAT 4.00, AHT 120.0 s, offers 2, accepted 1" in out
    SeenMessages(db, timedelta(days=3650)).claim("demo", "m-old", now=now - timedelta(days=100))
    assert main(["records", "purge", "--older-than-days", "90", "--db", db]) == 0
    assert "1 webhook_messages" in capsys.readouterr().out
    assert SeenMessages(db, timedelta(days=1)).count() == 0


def test_feedback_export_jsonl_and_csv(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    ensure_schema(db)
    store = RecordStore(db)
    for r in records():
        store.save(r)
    out = tmp_path / "cand.jsonl"
    assert main(["feedback", "export", "--period", "all", "-o", str(out), "--db", db]) == 0
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 1
    g = lines[0]
    assert (g["text"], g["count"], g["suggested_intent"]) == ("阿巴阿巴", 2, "return_request")
    assert set(g["example_call_ids"]) == {"a2", "a3"} and [v["text"] for v in g["variants"]] == ["阿巴阿巴", "阿巴阿巴阿巴"]
    assert main(["feedback", "export", "--period", "all", "--format", "csv", "--threshold", "0.95", "--db", db]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0]) == ["text", "suggested_intent", "count", "variants", "example_call_ids", "states", "label"]
    # at 0.95 "查订单" (0.9) is low-confidence too; it stays in its own group
    assert {r["text"]: int(r["count"]) for r in rows} == {"阿巴阿巴": 2, "查订单": 1}
    assert main(["feedback", "export", "--min-count", "2", "--period", "all", "--db", db]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_chat_console_stores_a_call_record(tmp_path, monkeypatch, capsys):
    from ivr.config import get_settings

    monkeypatch.setattr(sys, "stdin", io.StringIO("我要查订单\n#hangup\n"))
    assert main(["chat", "--caller-id", "13800138000"]) == 0
    capsys.readouterr()
    recs = RecordStore(get_settings().database_url).recent(5)
    assert len(recs) == 1
    rec = recs[0]
    assert rec.channel == "chat" and rec.caller == "138****" and rec.caller_key and rec.ended_at
    assert [(t.kind, t.caller_text) for t in rec.turns] == [("start", ""), ("speech", "我要查订单")]
    assert rec.turns[1].intent == "order_status" and rec.outcome == "abandoned"


def test_serve_purges_old_records_on_schedule(tmp_path):
    settings = load_settings({"data_dir": str(tmp_path / "data"), "retention_days": 30})
    ensure_schema(settings.database_url)
    store = RecordStore(settings.database_url)
    rec_dir = settings.data_dir / "recordings" / "old-day"
    old = _aged("ancient", 31, rec_dir, store)
    keep = _aged("recent", 29, rec_dir, store)
    with serve_in_thread(settings) as (_url, app):
        deadline = time.monotonic() + 30
        while store.get("ancient") is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert store.get("ancient") is None and not old.exists()
        assert store.get("recent") is not None and keep.exists()
        task = app.state.purge_task
        assert not task.done()  # still scheduled (hourly)
    assert task.done()  # cancelled at shutdown


def test_chat_record_masks_the_verification_answer(tmp_path, monkeypatch, capsys):
    from ivr.config import get_settings

    # a withheld number: the bot asks for the order, then the phone's last four digits (a credential)
    monkeypatch.setattr(sys, "stdin", io.StringIO("查订单\n订单号 100000000002\n八零零零\n#hangup\n"))
    assert main(["chat"]) == 0
    out = capsys.readouterr().out
    assert "核实通过" in out
    rec = RecordStore(get_settings().database_url).recent(1)[0]
    texts = [t.caller_text for t in rec.turns]
    assert "****" in texts and "八零零零" not in texts and "8000" not in " ".join(texts), texts
