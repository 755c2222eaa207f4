"""Agent assist's one-click shop actions and its counts, over a real warm transfer (real session, dialogue, seeded
SQLite shop, desk, bridge; in-process audio legs as in test_warm_transfer) and the real app (ASGI, login cookie,
CSRF guard). The shop write is checked in the shop's own tables and audit log; the record after the call ends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from test_warm_transfer import ORDER, Agent, _manager, _verified_caller_asks_for_human, parts  # noqa: F401

from ivr.services.agents import AccountStore
from ivr.services.records.assist_stats import assist_report, summarize
from ivr.services.records.model import CallRecord
from ivr.services.records.period import parse_window
from ivr.services.records.stats import Filters
from ivr.services.records.store import RecordStore
from ivr.services.shop import SqlShop
from ivr.web.app import create_app
from ivr.web.assist import Assistant

pytestmark = pytest.mark.timeout(240)
SITE = "http://testserver"
JSON = {"Origin": SITE}


async def _login(app, username: str) -> httpx.AsyncClient:
    c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SITE, timeout=30)
    r = await c.post("/api/login", json={"username": username, "password": "desk-pass-1"}, headers=JSON)
    assert r.is_success, r.text
    return c


async def test_create_return_after_confirmation_once_audited_and_recorded(parts):  # noqa: F811
    settings, _ = parts
    store = AccountStore(settings.database_url)
    for name in ("li.na", "zhou.qi"):
        if store.by_name(name) is None:
            store.add(name, role="agent", password="desk-pass-1", skills=["orders"])
    me = store.by_name("li.na")
    m = _manager(parts)
    await m.start()
    app = create_app(settings, manager=m)
    app.state.assistant = Assistant(app.state)
    watcher = asyncio.create_task(app.state.assistant.run())
    shop = SqlShop(settings.database_url)
    before = shop.get_order(ORDER)
    assert not [r for r in before.returns if r.status == "requested"], "the demo order must start without a return"
    agent = Agent(m.desk, me)
    port, task = await _verified_caller_asks_for_human(m)
    leg = agent.accept(await agent.next("offer"))
    await agent.next("connected")
    call_id = port.info.call_id
    first = await agent.next("assist", timeout=5)
    order = next(s for s in first["suggestions"] if s["kind"] == "order")
    assert order["actions"] == ["create_return", "resend_invoice"] and order["open_return"] is None

    c, intruder = await _login(app, "li.na"), await _login(app, "zhou.qi")
    anon = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SITE)
    try:
        url = f"/api/agent/calls/{call_id}/actions"
        body = {"action": "create_return", "reason": "changed_mind", "pickup": "tomorrow_pm", "suggestion_id": "order"}
        assert (await anon.post(url, json=body)).status_code == 401
        assert (await c.post(url, json=body, headers={"Origin": "http://evil.example"})).status_code == 403  # CSRF
        assert (await c.post(url, content="action=create_return", headers={**JSON, "Content-Type":
                                                                          "application/x-www-form-urlencoded"})).status_code == 415
        assert (await intruder.post(url, json={**body, "confirm": True}, headers=JSON)).status_code == 404
        assert (await c.post(url, json={"action": "drop_table"}, headers=JSON)).status_code == 400

        preview = await c.post(url, json=body, headers=JSON)  # step 1: nothing is written
        assert preview.status_code == 200 and ORDER in preview.json()["preview"] and "明天下午" in preview.json()["preview"]
        assert len(shop.get_order(ORDER).returns) == len(before.returns)
        assert not [a for a in shop.audit_entries(ORDER) if a["actor"].startswith("agent:")]

        done = await c.post(url, json={**body, "confirm": True}, headers=JSON)  # step 2: confirmed
        assert done.status_code == 200, done.text
        rma = done.json()["rma_id"]
        again = await c.post(url, json={**body, "confirm": True}, headers=JSON)  # a double click writes once
        assert again.status_code == 200 and again.json()["rma_id"] == rma
        after = shop.get_order(ORDER)
        created = [r for r in after.returns if r.rma_id == rma]
        assert len(after.returns) == len(before.returns) + 1 and created[0].status == "requested"
        assert created[0].pickup_slot.endswith("PM")
        audit = [a for a in shop.audit_entries(ORDER) if a["entity_id"] == rma]
        assert [(a["actor"], a["action"]) for a in audit] == [("agent:li.na", "return_created")]
        assert audit[0]["idempotency_key"].startswith(f"{call_id}:agent:create_return:{ORDER}:")

        # the desktop is told: the order now has an open return, and no second "create return" is offered
        ev = await agent.next("assist", timeout=3)
        order = next(s for s in ev["suggestions"] if s["kind"] == "order")
        assert order["open_return"] == rma and "create_return" not in order["actions"] and rma in order["text"]
        # a second return for the same order is refused by the shop, not by the page
        refused = await c.post(url, json={**body, "pickup": "day_after", "confirm": True}, headers=JSON)
        assert refused.status_code == 409 and "售后单" in refused.json()["error"], refused.text
        assert (await c.post(f"/api/agent/calls/{call_id}/assist/kb:x/ignored", json={}, headers=JSON)).status_code == 204
    finally:
        for cl in (c, intruder, anon):
            await cl.aclose()

    leg.caller_hangup()
    rec = await asyncio.wait_for(task, 30)
    watcher.cancel()
    await port.close()
    await leg.close()
    await m.shutdown(grace_s=1)
    assert [(a["action"], a["rma_id"], a["agent"]) for a in rec.extra["agent_actions"]] == [
        ("create_return", rma, "li.na")]
    turns = [t for t in rec.turns if "return_created" in t.actions]
    assert len(turns) == 1 and rma in turns[0].bot_text and turns[0].speaker == "agent"
    assert "order" in rec.extra["assist"]["used"] and rec.extra["assist"]["dismissed"] == ["kb:x"]
    saved = RecordStore(settings.database_url).get(call_id)
    assert saved is not None and saved.extra["agent_actions"][0]["rma_id"] == rma


def test_assist_counts_by_hand(tmp_path):
    from ivr.services.migrate import ensure_schema

    url = f"sqlite:///{tmp_path / 'r.db'}"
    ensure_schema(url)
    now = datetime.now(UTC)
    recs = [
        CallRecord("c1", "webrtc", outcome="transferred", started_at=now - timedelta(hours=1),
                   extra={"assist": {"shown": ["order", "kb:a", "flow:invoice"], "used": ["order"],
                                     "dismissed": ["kb:a"]},
                          "agent_actions": [{"action": "resend_invoice"}]}),
        CallRecord("c2", "sip", outcome="transferred", started_at=now - timedelta(hours=2),
                   extra={"assist": {"shown": ["kb:a"], "used": ["kb:a", "kb:never-shown"], "dismissed": []}}),
        CallRecord("c3", "sip", outcome="self_served", started_at=now - timedelta(hours=3)),
        CallRecord("c4", "sip", outcome="in_progress", started_at=now,
                   extra={"assist": {"shown": ["order"], "used": [], "dismissed": []}}),  # not finished
    ]
    store = RecordStore(url)
    for r in recs:
        store.save(r)
    got = assist_report(url, Filters(parse_window("7d")))
    # by hand: shown 3 + 1 = 4; used: order (c1), kb:a (c2) = 2 (an id never shown does not count); ignored 2
    assert (got["calls"], got["shown"], got["used"], got["ignored"], got["dismissed"]) == (2, 4, 2, 2, 1)
    assert got["use_rate"] == 0.5
    assert got["by_kind"]["kb"] == {"shown": 2, "used": 1, "ignored": 1, "dismissed": 1, "use_rate": 0.5}
    assert got["by_kind"]["flow"]["ignored"] == 1 and got["actions"] == {"resend_invoice": 1}
    assert assist_report(url, Filters(parse_window("7d"), channel="sip"))["shown"] == 1
    assert summarize([])["use_rate"] is None
