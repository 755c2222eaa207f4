"""Per-channel KPIs, offer counts, channel filters and the CSV's channel/offer columns over hand-made records, on
SQLite and PostgreSQL; the purge of webhook message ids. Every expected number is worked out by hand below."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from test_shop_helpers import db_url, pg_server  # noqa: F401  (fixtures)

from ivr.services.channels.history import CustomerHistory
from ivr.services.channels.replay import SeenMessages
from ivr.services.migrate import ensure_schema
from ivr.services.records import CallRecord, RecordStore
from ivr.services.records.export import csv_rows
from ivr.services.records.period import parse_window
from ivr.services.records.retention import cutoff_for, purge
from ivr.services.records.stats import Filters, Stats

pytestmark = pytest.mark.timeout(180)
NOW = datetime(2024, 6, 12, 4, 0, tzinfo=UTC)


def make(cid: str, channel: str, outcome: str, dur_s: float, *, csat: int | None = None,
         offer: tuple[str, str] | None = None, hours_ago: float = 1) -> CallRecord:
    """A finished contact; ``offer``: (kind, "accepted" | "declined" | "") leaves the offer's turn actions."""
    start = NOW - timedelta(hours=hours_ago)
    rec = CallRecord(call_id=cid, channel=channel, started_at=start, ended_at=start + timedelta(seconds=dur_s),
                     outcome=outcome, csat=csat)
    rec.add_turn("start", at=start, bot_text="您好", intent="greeting")
    rec.add_turn("speech", at=start, caller_text="查订单", intent="order_status", actions=["order_read"])
    if offer:
        kind, answer = offer
        rec.add_turn("speech", at=start, caller_text="好的", intent="affirm", actions=[f"offer_made:{kind}"])
        if answer:
            rec.add_turn("speech", at=start, caller_text="嗯", intent="affirm",
                         actions=[f"offer_{answer}:{kind}", "coupon_issued" if answer == "accepted" else "ok"])
    return rec


RECORDS = [
    # voice-sip: 3 calls, 2 self-served, 1 transferred; CSAT 5 and 3; AHT (100 + 60 + 200) / 3 = 120
    make("s1", "sip", "self_served", 100, csat=5, offer=("accessory", "accepted")),
    make("s2", "sip", "self_served", 60, csat=3, offer=("coupon", "declined")),
    make("s3", "sip", "transferred", 200),
    # voice-webrtc: 1 call, abandoned, 30 s, no CSAT; an offer left unanswered (hung up)
    make("w1", "webrtc", "abandoned", 30, offer=("restock", "")),
    # chat: the widget and the terminal console: 3 contacts, 2 self-served, 1 transferred; CSAT 4; AHT 80
    make("c1", "webchat", "self_served", 120, csat=4, offer=("restock", "accepted")),
    make("c2", "webchat", "transferred", 90),
    make("c3", "chat", "self_served", 30),
    # webhook: 1 contact, self-served, 45 s, CSAT 2, offer accepted
    make("m1", "messaging", "self_served", 45, csat=2, offer=("coupon", "accepted")),
    # other (fixture replay): 1 self-served
    make("r1", "replay", "self_served", 10),
    # outside the 7-day window, and a contact still in progress: never counted
    make("old", "sip", "self_served", 10, offer=("coupon", "accepted"), hours_ago=24 * 9),
    CallRecord(call_id="live", channel="webchat", started_at=NOW - timedelta(minutes=5)),
]


@pytest.fixture
def stats(db_url):  # noqa: F811
    ensure_schema(db_url)
    store = RecordStore(db_url)
    for r in RECORDS:
        store.save(r)
    return Stats(db_url)


def f(channel: str = "", period: str = "7d") -> Filters:
    return Filters(parse_window(period, now=NOW), channel)


def test_per_channel_kpis_by_hand(stats):
    report = stats.report(f())
    rows = {c["channel"]: c for c in report["by_channel"]}
    assert list(rows) == ["voice-sip", "voice-webrtc", "chat", "webhook", "other"]
    sip = rows["voice-sip"]
    assert (sip["calls"], sip["self_served"], sip["transferred"]) == (3, 2, 1)
    assert sip["containment"] == pytest.approx(2 / 3) and sip["transfer_rate"] == pytest.approx(1 / 3)
    assert sip["csat_avg"] == 4.0 and sip["csat_count"] == 2 and sip["aht_s"] == pytest.approx(120.0)
    assert (sip["offers_made"], sip["offers_accepted"], sip["offer_acceptance_rate"]) == (2, 1, 0.5)
    web = rows["voice-webrtc"]
    assert (web["calls"], web["containment"], web["transfer_rate"], web["csat_avg"], web["aht_s"]) == \
        (1, 0.0, 0.0, None, 30.0)
    assert (web["offers_made"], web["offers_accepted"]) == (1, 0)
    chat = rows["chat"]
    assert chat["members"] == ["webchat", "chat"]
    assert (chat["calls"], chat["self_served"], chat["transferred"]) == (3, 2, 1)
    assert chat["aht_s"] == pytest.approx((120 + 90 + 30) / 3) and chat["csat_avg"] == 4.0
    assert (chat["offers_made"], chat["offers_accepted"]) == (1, 1)
    hook = rows["webhook"]
    assert (hook["calls"], hook["containment"], hook["csat_avg"], hook["aht_s"]) == (1, 1.0, 2.0, 45.0)
    assert rows["other"]["calls"] == 1 and rows["other"]["label"] == "other"  # the dashboard shows the pack's label
    # the per-channel rows add up to the overall KPIs (9 finished contacts in the window)
    k = report["kpis"]
    assert k["calls"] == 9 == sum(c["calls"] for c in rows.values())
    assert k["self_served"] == 6 and k["transferred"] == 2
    assert {g["channel"] for g in report["channel_groups"]} == set(rows)


def test_offer_counts_and_acceptance_rate(stats):
    o = stats.report(f())["offers"]
    # offers on s1 (accepted), s2 (declined), w1 (no answer), c1 (accepted), m1 (accepted); "old" is outside
    assert (o["offered"], o["accepted"], o["declined"]) == (5, 3, 1)
    assert o["acceptance_rate"] == pytest.approx(3 / 5)
    assert o["by_kind"]["coupon"] == {"offered": 2, "accepted": 1, "declined": 1, "acceptance_rate": 0.5}
    assert o["by_kind"]["restock"]["offered"] == 2 and o["by_kind"]["restock"]["accepted"] == 1
    assert o["by_kind"]["accessory"]["acceptance_rate"] == 1.0
    k = stats.report(f())["kpis"]
    assert (k["offers_offered"], k["offers_accepted"], k["offer_acceptance_rate"]) == (5, 3, pytest.approx(0.6))
    ids = lambda body: {c["call_id"] for c in body["calls"]}  # noqa: E731
    assert ids(stats.calls(f(), kpi="offers")) == {"s1", "s2", "w1", "c1", "m1"}
    assert ids(stats.calls(f(), kpi="offers_accepted")) == {"s1", "c1", "m1"}
    assert stats.report(f(period="all"))["offers"]["offered"] == 6


def test_channel_filter_takes_groups_and_raw_names(stats):
    chat = stats.report(f("chat"))
    assert chat["kpis"]["calls"] == 3 and chat["kpis"]["in_progress"] == 1  # the live widget chat
    assert [c["calls"] for c in chat["by_channel"]] == [0, 0, 3, 0]
    assert stats.report(f("webchat"))["kpis"]["calls"] == 2
    assert stats.report(f("voice-sip"))["offers"]["accepted"] == 1
    assert stats.report(f("other"))["kpis"]["calls"] == 1
    drill = stats.calls(f("chat"))
    assert {c["call_id"] for c in drill["calls"]} == {"c1", "c2", "c3"}
    assert {c["channel_group"] for c in drill["calls"]} == {"chat"}


def test_export_has_channel_group_and_offer(stats):
    rows = list(csv.DictReader(io.StringIO("".join(csv_rows(stats.url, f())))))
    by = {r["call_id"]: r for r in rows}
    assert set(by) == {"s1", "s2", "s3", "w1", "c1", "c2", "c3", "m1", "r1", "live"}
    assert (by["s1"]["channel_group"], by["s1"]["offer"], by["s1"]["offer_result"]) == ("voice-sip", "accessory",
                                                                                         "accepted")
    assert (by["s2"]["offer"], by["s2"]["offer_result"]) == ("coupon", "declined")
    assert (by["w1"]["offer"], by["w1"]["offer_result"]) == ("restock", "")
    assert (by["c3"]["channel_group"], by["c3"]["offer"]) == ("chat", "")
    assert by["m1"]["channel_group"] == "webhook" and by["r1"]["channel_group"] == "other"
    only = list(csv.DictReader(io.StringIO("".join(csv_rows(stats.url, f("webhook"))))))
    assert [r["call_id"] for r in only] == ["m1"]


def test_purge_clears_webhook_message_ids_of_the_same_age(db_url):  # noqa: F811
    ensure_schema(db_url)
    seen = SeenMessages(db_url, timedelta(days=3650))  # keep everything: only the purge may remove them
    for mid, days in (("old1", 120), ("old2", 91), ("edge", 89.9), ("new", 1)):
        assert seen.claim("demo", mid, now=NOW - timedelta(days=days))
    cutoff = cutoff_for(90, now=NOW)
    store = RecordStore(db_url)
    dry = purge(store, cutoff, dry_run=True)
    assert dry.webhook_messages == 2 and seen.count() == 4 and dry.as_dict()["webhook_messages"] == 2
    assert purge(store, cutoff).webhook_messages == 2 and seen.count() == 2
    assert not seen.claim("demo", "edge", now=NOW) and seen.claim("demo", "old1", now=NOW)  # old ids are forgotten
    assert purge(store, cutoff).webhook_messages == 0


def test_purge_clears_restock_subscriptions_of_the_same_age(db_url):  # noqa: F811
    from sqlalchemy import select

    from ivr.services.db import transaction
    from ivr.services.shop.offer_models import RestockSubscription

    ensure_schema(db_url)
    with transaction(db_url) as s:
        for cid, days in (("C1", 120), ("C2", 89), ("C3", 1)):
            s.add(RestockSubscription(customer_id=cid, sku="AP0007", phone="13800138000",
                                      created_at=NOW - timedelta(days=days)))
    store = RecordStore(db_url)
    cutoff = cutoff_for(90, now=NOW)
    assert purge(store, cutoff, dry_run=True).restock_subscriptions == 1
    res = purge(store, cutoff)
    assert res.restock_subscriptions == 1 and res.as_dict()["restock_subscriptions"] == 1
    with transaction(db_url) as s:
        left = sorted(s.scalars(select(RestockSubscription.customer_id)))
    assert left == ["C2", "C3"]


def test_purge_forgets_cross_channel_history_of_the_same_age(db_url):  # noqa: F811
    ensure_schema(db_url)
    history = CustomerHistory(db_url, "k")
    key = history.key("13800138000")
    for cid, days in (("old", 120), ("edge", 89.9), ("new", 1)):
        history.link(key, cid, "webchat", started_at=NOW - timedelta(days=days), order_id="202401010001")
    cutoff = cutoff_for(90, now=NOW)
    store = RecordStore(db_url)
    dry = purge(store, cutoff, dry_run=True)
    assert dry.customer_contacts == 1 and dry.as_dict()["customer_contacts"] == 1
    assert purge(store, cutoff).customer_contacts == 1
    left = {c.call_id for c in history.contacts(key, within=timedelta(days=3650), now=NOW)}
    assert left == {"edge", "new"}
