"""Agent assist for a web chat handed to an agent (real app under uvicorn, real dialogue, seeded SQLite shop, HTTP
clients for the customer and the agent): the customer's typed lines drive the same suggestions as a caller's
transcript (the knowledge-base answer, the flow's next step, the order facts), only for the agent holding the chat;
a one-click action writes after confirmation; the chat's record counts what was shown and used."""

from __future__ import annotations

import time

import httpx
import pytest
from browser.server import serve_in_thread
from test_chat_agent import Customer, _offer, _record

from ivr.config import load_settings
from ivr.services.agents import AccountStore
from ivr.services.migrate import ensure_schema

pytestmark = pytest.mark.timeout(120)
ORDER = "100000000002"
QUESTION = "这双鞋七天无理由退货到哪天截止"


def _login(url: str, user: str, password: str, available: bool = True) -> httpx.Client:
    c = httpx.Client(base_url=url, timeout=10)
    assert c.post("/api/login", json={"username": user, "password": password}).status_code == 200
    if available:
        assert c.post("/api/agent/presence", json={"state": "available"}).status_code == 200
    return c


def _ids(agent: httpx.Client, call_id: str) -> set[str]:
    r = agent.get(f"/api/agent/calls/{call_id}/assist")
    assert r.status_code == 200, r.text
    return {s["id"] for s in r.json()["suggestions"]}


def test_chat_lines_drive_the_agents_suggestions(tmp_path) -> None:
    settings = load_settings({"data_dir": str(tmp_path / "data"), "demo_data": True, "queue_max_wait_s": 30.0})
    ensure_schema(settings.database_url)
    accounts = AccountStore(settings.database_url)
    accounts.add("chat1", role="agent", password="chat-pass-1", display_name="小王", skills=["orders"])
    accounts.add("chat2", role="agent", password="chat-pass-2", display_name="小李", skills=["orders"])
    with serve_in_thread(settings) as (url, app):
        shop = app.state.calls.parts.shop
        agent = _login(url, "chat1", "chat-pass-1")
        other = _login(url, "chat2", "chat-pass-2", available=False)  # signed in, not taking chats
        cust = Customer(url)
        cust.say(key="1", label="查订单")
        cust.say(text=ORDER)
        assert "核实通过" in cust.say(text=shop.get_order(ORDER).phone[-4:])["messages"][-1]["text"]
        assert cust.say(text="转人工")["closed"] is False
        offer = _offer(agent)
        call_id = offer["call_id"]
        assert agent.post(f"/api/agent/chats/{offer['offer_id']}/accept", json={}).status_code == 200
        cust.wait_for(lambda m: "小王已接入" in m["text"])

        # the order facts come with the chat; nothing about returns has been asked yet
        before = _ids(agent, call_id)
        assert "order" in before and "kb:seven_day_return" not in before
        assert other.get(f"/api/agent/calls/{call_id}/assist").status_code == 404  # not their chat

        cust.say(text=QUESTION)
        deadline = time.monotonic() + 5
        while not {"kb:seven_day_return", "flow:return_request"} <= (ids := _ids(agent, call_id)):
            assert time.monotonic() < deadline, ids
            time.sleep(0.1)
        sugg = {s["id"]: s for s in agent.get(f"/api/agent/calls/{call_id}/assist").json()["suggestions"]}
        assert sugg["kb:seven_day_return"]["heard"] == QUESTION and "七天" in sugg["kb:seven_day_return"]["text"]
        assert "create_return" in sugg["flow:return_request"]["actions"]
        assert "七天无理由退货：可办理" in sugg["order"]["text"]
        # the watcher published them on the agent's desk too: they are counted as shown on the chat's record
        live = app.state.chat_hub.get(call_id).call.record
        deadline = time.monotonic() + 5
        while "kb:seven_day_return" not in (live.extra.get("assist") or {}).get("shown", []):
            assert time.monotonic() < deadline, live.extra.get("assist")
            time.sleep(0.1)

        # one click: a preview first (nothing written), then the confirmed write
        returns_before = {r.rma_id for r in shop.get_order(ORDER).returns}
        body = {"action": "create_return", "reason": "changed_mind", "suggestion_id": "flow:return_request"}
        preview = agent.post(f"/api/agent/calls/{call_id}/actions", json=body)
        assert preview.status_code == 200 and ORDER in preview.json()["preview"], preview.text
        assert {r.rma_id for r in shop.get_order(ORDER).returns} == returns_before
        assert other.post(f"/api/agent/calls/{call_id}/actions", json={**body, "confirm": True}).status_code == 404
        done = agent.post(f"/api/agent/calls/{call_id}/actions", json={**body, "confirm": True})
        assert done.status_code == 200 and done.json()["done"] is True, done.text
        rma = done.json()["rma_id"]
        assert {r.rma_id for r in shop.get_order(ORDER).returns} == returns_before | {rma}
        assert agent.post(f"/api/agent/calls/{call_id}/assist/kb:seven_day_return/ignored").status_code == 204

        assert agent.post(f"/api/agent/calls/{call_id}/hangup", json={}).status_code == 204
        rec = _record(app, call_id)
    assist = rec.extra["assist"]
    assert {"order", "kb:seven_day_return", "flow:return_request"} <= set(assist["shown"])
    assert assist["used"] == ["flow:return_request"] and assist["dismissed"] == ["kb:seven_day_return"]
    assert [(a["action"], a["rma_id"], a["agent"]) for a in rec.extra["agent_actions"]] == [
        ("create_return", rma, "chat1")]
    assert any(t.caller_text == QUESTION for t in rec.turns)
