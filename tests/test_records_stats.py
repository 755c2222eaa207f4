"""Statistics, drill-down, unrecognised-utterance mining and purge over hand-made records, on SQLite and PostgreSQL.

Every expected number below is worked out by hand from the records written here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from test_shop_helpers import db_url, pg_server  # noqa: F401  (fixtures)

from ivr.services.migrate import ensure_schema
from ivr.services.records import CallRecord, RecordStore
from ivr.services.records.feedback import collect, group
from ivr.services.records.period import PeriodError, parse_window
from ivr.services.records.retention import cutoff_for, purge
from ivr.services.records.stats import Filters, Stats, percentile

pytestmark = pytest.mark.timeout(180)
NOW = datetime(2024, 6, 12, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


def make(cid: str, hours_ago: float, dur_s: float, outcome: str, *, channel: str = "webrtc", caller: str = "",
         csat: int | None = None, turns: list[dict] | None = None) -> CallRecord:
    start = NOW - timedelta(hours=hours_ago)
    rec = CallRecord(call_id=cid, channel=channel, caller=caller, caller_key=f"k-{caller}" if caller else "",
                     started_at=start, ended_at=start + timedelta(seconds=dur_s), outcome=outcome, csat=csat)
    rec.add_turn("start", at=start, bot_text="您好", intent="greeting", latency_ms=None)
    for t in turns or []:
        rec.add_turn(t.pop("kind", "speech"), at=start + timedelta(seconds=1), **t)
    return rec


def records() -> list[CallRecord]:
    return [
        make("a1", 1, 60, "self_served", caller="13800138000", csat=5, turns=[
            dict(caller_text="查订单", intent="order_status", confidence=0.9, asr_confidence=0.8, latency_ms=400.0,
                 sentiment=0.0),
            dict(kind="dtmf", caller_text="5", intent="dtmf", latency_ms=200.0, sentiment=0.0)]),
        make("a2", 2, 30, "transferred", caller="13900001111", turns=[
            dict(caller_text="阿巴阿巴", intent="other", confidence=0.1, asr_confidence=0.4, latency_ms=600.0,
                 actions=["no_match"], sentiment=-0.5),
            dict(caller_text="我要退货", intent="return_request", confidence=0.95, asr_confidence=0.9,
                 latency_ms=1000.0, sentiment=-0.1)]),
        make("a3", 30, 90, "self_served", channel="sip", caller="13900001111", csat=3, turns=[
            dict(caller_text="阿巴阿巴阿巴", intent="order_status", confidence=0.3, asr_confidence=0.6,
                 sentiment=0.2)]),
        make("a4", 50, 10, "abandoned", channel="sip"),
        make("a5", 24 * 10, 20, "self_served", caller="13700002222", csat=1),  # outside 7d
        make("a6", 0.5, 0, "in_progress"),
    ]


@pytest.fixture
def stats(db_url):  # noqa: F811
    ensure_schema(db_url)
    store = RecordStore(db_url)
    for r in records():
        store.save(r)
    return Stats(db_url)


def f(period: str = "7d", channel: str = "", **kw) -> Filters:
    return Filters(parse_window(period, now=NOW, **kw), channel)


def test_kpis_by_hand(stats):
    k = stats.report(f("7d"))["kpis"]
    assert (k["calls"], k["in_progress"], k["self_served"], k["transferred"], k["abandoned"]) == (4, 1, 2, 1, 1)
    assert k["containment"] == 0.5 and k["transfer_rate"] == 0.25 and k["abandonment"] == 0.25
    assert k["aht_s"] == pytest.approx((60 + 30 + 90 + 10) / 4)
    # caller 139...: a2 (2 h ago) came after a3 (30 h ago), so a3 is not first-contact resolved; a1 is; a4 anonymous
    assert (k["fcr_resolved"], k["fcr_eligible"]) == (1, 3) and k["fcr"] == pytest.approx(1 / 3)
    assert k["csat_avg"] == 4.0 and k["csat_count"] == 2
    assert k["csat_distribution"] == {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1}
    # latencies 200, 400, 600, 1000: p50 = 500, p95 = 600 + 0.85 * 400
    assert k["latency_p50_ms"] == 500.0 and k["latency_p95_ms"] == pytest.approx(940.0)
    assert k["asr_confidence_avg"] == pytest.approx((0.8 + 0.4 + 0.9 + 0.6) / 4) and k["asr_turns"] == 4
    assert k["sentiment_avg"] == pytest.approx((0 + 0 - 0.5 - 0.1 + 0.2) / 5) and k["negative_share"] == 0.2


def test_channel_period_and_series(stats):
    sip = stats.report(f("7d", "sip"))
    assert sip["kpis"]["calls"] == 2 and sip["kpis"]["containment"] == 0.5 and sip["kpis"]["latency_p50_ms"] is None
    assert sip["channels"] == ["sip", "webrtc"]
    day = stats.report(f("24h"))
    assert day["period"]["bucket"] == "hour" and day["kpis"]["calls"] == 2
    assert len(day["series"]) == 24  # local hours 12:00 yesterday .. 11:00 today
    assert sum(p["calls"] for p in day["series"]) == 2
    at = {p["t"]: p for p in day["series"]}
    assert at["2024-06-12T11:00:00+08:00"]["self_served"] == 1  # a1 at 03:00 UTC
    assert at["2024-06-12T10:00:00+08:00"]["transferred"] == 1
    week = stats.report(f("7d"))
    assert week["period"]["bucket"] == "day" and len(week["series"]) == 8
    assert [p["calls"] for p in week["series"]][-3:] == [1, 1, 2]  # a4 on the 10th, a3 on the 11th, a1+a2 today
    assert stats.report(f("all"))["kpis"]["calls"] == 5
    custom = stats.report(f(start="2024-06-02", end="2024-06-02"))
    assert custom["kpis"]["calls"] == 1 and custom["kpis"]["csat_avg"] == 1.0  # a5 alone
    intents = {i["intent"]: i["count"] for i in week["intents"]}
    assert intents == {"order_status": 2, "dtmf": 1, "other": 1, "return_request": 1}


def test_drill_down_and_transcript(stats):
    ids = lambda body: {c["call_id"] for c in body["calls"]}  # noqa: E731
    assert ids(stats.calls(f(), kpi="containment")) == {"a1", "a3"}
    assert ids(stats.calls(f(), kpi="fcr")) == {"a1"}
    assert ids(stats.calls(f(), csat=3)) == {"a3"}
    assert ids(stats.calls(f(), intent="return_request")) == {"a2"}
    assert ids(stats.calls(f(), kpi="latency")) == {"a2"}  # the only call with a turn >= p95 (940 ms)
    page = stats.calls(f(), limit=2)
    assert page["total"] == 4 and [c["call_id"] for c in page["calls"]] == ["a1", "a2"]
    with pytest.raises(ValueError):
        stats.calls(f(), kpi="nonsense")
    rec = stats.transcript("a2")
    assert [t.caller_text for t in rec.turns] == ["", "阿巴阿巴", "我要退货"]
    assert rec.caller == "139****"  # masked at write time


def test_unrecognised_grouped_with_context(stats):
    items = collect(stats.url, f())
    assert sorted(u.text for u in items) == ["阿巴阿巴", "阿巴阿巴阿巴"]  # no_match/other and confidence 0.3 < 0.45
    first = next(u for u in items if u.text == "阿巴阿巴")
    assert first.prompt == "您好" and first.rephrased_as == "return_request"
    groups = group(items)
    assert len(groups) == 1 and groups[0].count == 2 and groups[0].text == "阿巴阿巴"
    # votes: the caller's rephrasing (return_request, weight 2) beats the NLU's weak guess (order_status, 1)
    assert groups[0].suggested_intent == "return_request"
    assert set(groups[0].as_dict()["example_call_ids"]) == {"a2", "a3"}


def test_purge_removes_exactly_the_old(db_url, tmp_path):  # noqa: F811
    ensure_schema(db_url)
    store = RecordStore(db_url)
    files = {}
    for cid, days in (("old1", 120), ("old2", 91), ("edge", 89.9), ("new", 1)):
        rec = make(cid, days * 24, 5, "self_served")
        p = tmp_path / "recordings" / cid[:3] / f"{cid}.wav"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"RIFF....")
        rec.recording_path = str(p)
        files[cid] = p
        store.save(rec)
    stray = tmp_path / "recordings" / "old" / "not-a-record.wav"
    stray.write_bytes(b"x")
    cutoff = cutoff_for(90, now=NOW)
    dry = purge(store, cutoff, dry_run=True)
    assert dry.call_ids == ["old1", "old2"] and all(p.exists() for p in files.values())
    res = purge(store, cutoff)
    assert res.call_ids == ["old1", "old2"] and sorted(res.files) == sorted([str(files["old1"]), str(files["old2"])])
    assert store.get("old1") is None and store.get("old2") is None
    assert store.get("edge") is not None and store.get("new") is not None
    assert not files["old1"].exists() and not files["old2"].exists()
    assert files["edge"].exists() and files["new"].exists() and stray.exists()
    assert purge(store, cutoff).call_ids == []


def test_period_syntax():
    w = parse_window("today", now=NOW)
    assert w.start == datetime(2024, 6, 11, 16, 0, tzinfo=UTC) and w.end == NOW and w.bucket == "hour"
    y = parse_window("yesterday", now=NOW)
    assert y.end - y.start == timedelta(days=1)
    assert parse_window("30d", now=NOW).start == NOW - timedelta(days=30)
    assert parse_window(None, start="2024-06-01T08:00", now=NOW).start == datetime(2024, 6, 1, 0, 0, tzinfo=UTC)
    for bad in ("week", "0d", "7x"):
        with pytest.raises(PeriodError):
            parse_window(bad, now=NOW)
    with pytest.raises(PeriodError):
        parse_window("7d", start="2024-06-05", end="2024-06-01", now=NOW)
    assert percentile([], 50) is None and percentile([3.0], 95) == 3.0
