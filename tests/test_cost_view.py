"""The cost and value view over records seeded through the records store (SQLite and PostgreSQL); every figure
below is worked out by hand from the seeded set. Then the same figures on /api/stats, /api/stats/cost.csv (login
rules) and `ivr records stats --cost`."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from browser.server import serve_in_thread
from test_shop_helpers import db_url, pg_server  # noqa: F401  (fixtures)

from ivr.cli import main
from ivr.config import load_settings
from ivr.services.agents import AccountStore
from ivr.services.migrate import ensure_schema
from ivr.services.records import CallRecord, RecordStore
from ivr.services.records.period import parse_window
from ivr.services.records.stats import Filters
from ivr.services.records.value import CostRates, ValueView

pytestmark = pytest.mark.timeout(240)
RATES = CostRates(agent_cost_per_hour=72.0, bot_cost_per_call=0.6)


def _rec(now: datetime, cid: str, channel: str, outcome: str, dur_s: float, intents: list[str], *,
         agent: str = "", disposition: str = "", days_ago: float = 0.0) -> CallRecord:
    start = now - timedelta(hours=1, days=days_ago)
    rec = CallRecord(call_id=cid, channel=channel, started_at=start, outcome=outcome, agent_id=agent,
                     disposition=disposition, ended_at=None if outcome == "in_progress" else
                     start + timedelta(seconds=dur_s))
    rec.add_turn("start", at=start, bot_text="您好", intent="greeting")
    for i, intent in enumerate(intents):
        rec.add_turn("speech", at=start + timedelta(seconds=i + 1), caller_text="话", intent=intent)
    return rec


def seed(url: str, now: datetime) -> None:
    ensure_schema(url)
    store = RecordStore(url)
    for r in [
        _rec(now, "c1", "webrtc", "self_served", 60, ["greeting", "order_status"]),
        _rec(now, "c2", "webrtc", "self_served", 30, ["return_request"]),
        _rec(now, "c3", "sip", "transferred", 600, ["other", "complaint"], agent="ag1", disposition="resolved"),
        _rec(now, "c4", "sip", "transferred", 300, ["return_request", "order_status"], agent="ag1",
             disposition="follow_up"),
        _rec(now, "c5", "chat", "abandoned", 20, []),
        _rec(now, "c6", "webrtc", "in_progress", 0, ["order_status"]),  # not finished: not counted
        _rec(now, "c7", "webrtc", "callback", 40, ["affirm", "order_status"]),
        _rec(now, "c8", "webrtc", "self_served", 50, ["order_status"], days_ago=10),  # outside 7 days
    ]:
        store.save(r)


def by_key(rows: list[dict]) -> dict[str, dict]:
    return {r["key"]: r for r in rows}


def test_figures_match_a_hand_computation(db_url):  # noqa: F811
    now = datetime.now(UTC)
    seed(db_url, now)
    rep = ValueView(db_url).report(Filters(parse_window("7d", now=now)), RATES)
    # c1 c2 c3 c4 c5 c7; contained c1 c2; resolved c1 c2 + c3 (agent, "resolved"); agents on c3 + c4 = 900 s
    assert rep["currency"] == "CNY"
    assert rep["rates"]["avg_agent_handle_s"] == pytest.approx(450.0)
    assert rep["rates"]["avg_agent_handle_source"] == "measured"
    t = rep["totals"]
    assert (t["calls"], t["contained"], t["resolved"], t["agent_calls"]) == (6, 2, 3, 2)
    assert t["agent_minutes"] == pytest.approx(15.0)
    assert t["agent_minutes_saved"] == pytest.approx(2 * 450 / 60)  # 15 min
    assert t["money_saved"] == pytest.approx(2 * (450 / 3600 * 72 - 0.6))  # 16.80
    assert t["bot_cost"] == pytest.approx(3.6) and t["agent_cost"] == pytest.approx(18.0)
    assert t["total_cost"] == pytest.approx(21.6) and t["cost_per_resolved"] == pytest.approx(7.2)

    ch = by_key(rep["by_channel"])
    assert sorted(ch) == ["chat", "sip", "webrtc"]
    assert ch["chat"]["total_cost"] == pytest.approx(0.6) and ch["chat"]["cost_per_resolved"] is None
    assert (ch["sip"]["calls"], ch["sip"]["resolved"], ch["sip"]["contained"]) == (2, 1, 0)
    assert ch["sip"]["cost_per_resolved"] == pytest.approx(1.2 + 18.0) and ch["sip"]["money_saved"] == 0
    assert ch["webrtc"]["cost_per_resolved"] == pytest.approx(1.8 / 2)
    assert ch["webrtc"]["money_saved"] == pytest.approx(16.8)

    # a call's request is its first asking intent: c1 order_status (after a greeting), c7 order_status (after a
    # yes), c4 return_request (before order_status), c3 complaint (after an unrecognised turn), c5 none -> other
    intents = rep["by_intent"]
    assert [r["key"] for r in intents] == ["order_status", "return_request", "complaint", "other"]
    it = by_key(intents)
    assert (it["order_status"]["calls"], it["order_status"]["resolved"]) == (2, 1)
    assert it["order_status"]["cost_per_resolved"] == pytest.approx(1.2)
    assert it["order_status"]["agent_minutes_saved"] == pytest.approx(7.5)
    assert it["return_request"]["total_cost"] == pytest.approx(1.2 + 300 / 3600 * 72)
    assert it["return_request"]["cost_per_resolved"] == pytest.approx(7.2)
    assert it["complaint"]["cost_per_resolved"] == pytest.approx(0.6 + 12.0)
    assert it["other"]["cost_per_resolved"] is None


def test_configured_and_default_handle_time(db_url):  # noqa: F811
    now = datetime.now(UTC)
    seed(db_url, now)
    view = ValueView(db_url)
    rep = view.report(Filters(parse_window("7d", now=now)), CostRates(72.0, 0.6, agent_handle_time_s=240))
    assert rep["rates"]["avg_agent_handle_source"] == "configured"
    assert rep["totals"]["agent_minutes_saved"] == pytest.approx(8.0)
    assert rep["totals"]["money_saved"] == pytest.approx(2 * (240 / 3600 * 72 - 0.6))
    # webrtc alone has no agent-handled call: the documented 300 s
    rep = view.report(Filters(parse_window("7d", now=now), "webrtc"), RATES)
    assert rep["rates"]["avg_agent_handle_source"] == "default"
    assert rep["totals"]["agent_minutes_saved"] == pytest.approx(10.0)
    assert rep["totals"]["money_saved"] == pytest.approx(2 * (300 / 3600 * 72 - 0.6))
    assert rep["totals"]["calls"] == 3


def test_dashboard_api_csv_and_cli(tmp_path, capsys):
    settings = load_settings({"data_dir": str(tmp_path / "d"), "agent_cost_per_hour": 72.0,
                              "bot_cost_per_call": 0.6})
    url = settings.database_url
    seed(url, datetime.now(UTC))
    accounts = AccountStore(url)
    accounts.add("sup1", role="supervisor", password="sup-pass-11")
    accounts.add("agent1", role="agent", password="agent-pass-1")
    with serve_in_thread(settings) as (base, _app):
        with httpx.Client(base_url=base, timeout=30) as anon:
            assert anon.get("/api/stats/cost.csv").status_code == 401
            assert anon.get("/api/stats/cost").status_code == 401
        with httpx.Client(base_url=base, timeout=30) as agent:
            assert agent.post("/api/login", json={"username": "agent1", "password": "agent-pass-1"}).is_success
            assert agent.get("/api/stats/cost.csv").status_code == 403
        with httpx.Client(base_url=base, timeout=30) as sup:
            assert sup.post("/api/login", json={"username": "sup1", "password": "sup-pass-11"}).is_success
            cost = sup.get("/api/stats").json()["cost"]
            assert cost["totals"]["money_saved"] == pytest.approx(16.8)
            assert cost["totals"]["cost_per_resolved"] == pytest.approx(7.2)
            r = sup.get("/api/stats/cost.csv")
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
            assert "attachment" in r.headers["content-disposition"]
            rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
            assert sup.get("/api/stats/cost?period=soon").status_code == 400
    total = next(x for x in rows if x["group"] == "total")
    assert (total["calls"], total["resolved"], total["money_saved"], total["cost_per_resolved"]) == (
        "6", "3", "16.80", "7.20")
    sip = next(x for x in rows if x["group"] == "channel" and x["key"] == "sip")
    assert sip["total_cost"] == "19.20" and sip["agent_minutes"] == "15.0"
    other = next(x for x in rows if x["group"] == "intent" and x["key"] == "other")
    assert other["cost_per_resolved"] == ""

    capsys.readouterr()
    assert main(["records", "stats", "--cost", "--json", "--db", url]) == 0
    out = json.loads(capsys.readouterr().out)
    # the CLI reads the settings of this process (defaults: 60 CNY/h, 0.5 CNY/call)
    assert out["totals"]["money_saved"] == pytest.approx(2 * (450 / 3600 * 60 - 0.5))
    assert main(["records", "stats", "--cost", "--channel", "sip", "--db", url]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("group,key,calls") and lines[1].startswith("total,total,2,0,1,2,15.0,")


async def test_dashboard_page_shows_the_cost_section(tmp_path):
    """Real Chromium: the dashboard's cost tiles and tables show the hand-computed figures (default rates)."""
    from browser.chromium import chromium_page, wait_js

    from ivr.audio.files import write_wav
    from ivr.audio.frames import AudioFrame

    settings = load_settings({"data_dir": str(tmp_path / "d")})  # 60 CNY per agent hour, 0.5 per bot call
    seed(settings.database_url, datetime.now(UTC))
    AccountStore(settings.database_url).add("lead", role="supervisor", password="lead-pass-1")
    silence = write_wav(tmp_path / "s.wav", AudioFrame(b"\x00\x00" * 16000, 16000))
    with serve_in_thread(settings) as (url, _app):
        async with chromium_page(silence, tmp_path / "p") as page:
            await page.goto(f"{url}/dashboard")
            await page.fill("input[name=username]", "lead")
            await page.fill("input[name=password]", "lead-pass-1")
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{url}/dashboard")
            await wait_js(page, "document.querySelector('#cost-intent tbody tr')", 20000)
            # saved: 2 x (450 / 3600 x 60 - 0.5) = 14.00; per resolved: (6 x 0.5 + 900 / 3600 x 60) / 3 = 6.00
            assert await page.text_content("#cost-saved .value") == "¥14.00"
            assert await page.text_content("#cost-per-resolved .value") == "¥6.00"
            assert await page.text_content("#cost-minutes .value") == "15.0分钟"
            assert await page.text_content("#cost-contained .value") == "2"
            sip = await page.text_content("#cost-channel tr[data-key=sip]")
            assert "¥16.00" in sip and "电话" in sip
            assert "查订单" in await page.text_content("#cost-intent tr[data-key=order_status]")
            assert await page.get_attribute("#cost-export", "href") == "/api/stats/cost.csv?period=7d"
