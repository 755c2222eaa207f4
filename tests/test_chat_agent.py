"""Web chats handed to the agent desk (real app under uvicorn, real dialogue, seeded SQLite shop, HTTP clients for
the customer and the agent): the chat joins the agents' queue with its card, the agent accepts it as a chat and
types, the customer sees it, the customer's messages reach the agent's transcript, the agent ends it, wrap-up is
filed, and the record keeps the bot part and the agent part. Nobody signed in, or nobody answering in time, books
a callback ticket instead, with the reason in the customer's last message."""

from __future__ import annotations

import time

import httpx
import pytest
from browser.server import serve_in_thread

from ivr.config import load_settings
from ivr.services.agents import AccountStore
from ivr.services.migrate import ensure_schema
from ivr.services.records import RecordStore

pytestmark = pytest.mark.timeout(120)
ORDER = "100000000001"


@pytest.fixture
def server(tmp_path):
    settings = load_settings({"data_dir": str(tmp_path / "data"), "demo_data": True, "queue_max_wait_s": 6.0})
    ensure_schema(settings.database_url)
    AccountStore(settings.database_url).add("chat1", role="agent", password="chat-pass-1",
                                            display_name="小王", skills=["orders"])
    with serve_in_thread(settings) as (url, app):
        yield url, app


class Customer:
    def __init__(self, url: str) -> None:
        self.c = httpx.Client(base_url=url, timeout=10)
        r = self.c.post("/api/chat/sessions", json={})
        assert r.status_code == 201, r.text
        self.s = r.json()
        self.c.headers["X-Chat-Token"] = self.s["chat_token"]
        self.id = self.s["session_id"]

    def say(self, **body) -> dict:
        r = self.c.post(f"/api/chat/sessions/{self.id}/messages", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def messages(self) -> list[dict]:
        return self.c.get(f"/api/chat/sessions/{self.id}").json()["messages"]

    def wait_for(self, pred, timeout: float = 15.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.messages():
                if pred(m):
                    return m
            time.sleep(0.1)
        raise AssertionError(f"no such message in {self.messages()}")


def _agent(url: str) -> httpx.Client:
    c = httpx.Client(base_url=url, timeout=10)
    assert c.post("/api/login", json={"username": "chat1", "password": "chat-pass-1"}).status_code == 200
    assert c.post("/api/agent/presence", json={"state": "available"}).status_code == 200
    return c


def _verified_customer(url: str, app) -> Customer:
    tail = app.state.calls.parts.shop.get_order(ORDER).phone[-4:]
    cust = Customer(url)
    cust.say(key="1", label="查订单")
    cust.say(text=ORDER)
    bot = cust.say(text=tail)["messages"][-1]
    assert "核实通过" in bot["text"] and bot["cards"], bot
    return cust


def _record(app, call_id: str, timeout: float = 5.0):
    """The saved record (a conversation's last message is shown just before its record is written)."""
    deadline = time.monotonic() + timeout
    while (rec := RecordStore(app.state.settings.database_url).get(call_id)) is None:
        assert time.monotonic() < deadline, f"no record {call_id}"
        time.sleep(0.1)
    return rec


def _offer(agent: httpx.Client, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        offer = agent.get("/api/agent/state").json()["offer"]
        if offer:
            return offer
        time.sleep(0.1)
    raise AssertionError("the chat was never offered")


def test_chat_goes_to_the_agent_and_back_and_the_record_has_both_parts(server) -> None:
    url, app = server
    agent = _agent(url)
    cust = _verified_customer(url, app)
    r = cust.say(text="转人工")
    assert r["closed"] is False  # waiting for a person, not a callback
    cust.wait_for(lambda m: "排在第一位" in m["text"])
    offer = _offer(agent)
    ctx = offer["context"]
    assert ctx["channel"] == "webchat" and ctx["order"]["order_id"] == ORDER and ctx["verification"]["verified"]
    assert any(t["who"] == "bot" and "核实通过" in t["text"] for t in ctx["transcript"])  # the bot part on the card
    assert ctx["summary"].startswith("在线咨询") and "号码" not in ctx["summary"]  # a chat has no caller number
    call_id = offer["call_id"]
    assert call_id == cust.id
    r = agent.post(f"/api/agent/chats/{offer['offer_id']}/accept", json={})
    assert r.status_code == 200, r.text
    assert r.json() == {"call_id": call_id, "channel": "webchat"}
    cust.wait_for(lambda m: "小王已接入" in m["text"])
    assert agent.get("/api/agent/state").json()["agent"]["presence"] == "busy"
    assert agent.post(f"/api/agent/chats/{call_id}/messages", json={"text": "您好，我是小王，请问快递有什么问题？"}
                      ).status_code == 204
    got = cust.wait_for(lambda m: m["role"] == "agent")
    assert got["text"] == "您好，我是小王，请问快递有什么问题？" and got["agent"] == "小王"
    r = cust.say(text="快递三天没动了")
    assert [m["role"] for m in r["messages"]] == ["customer"]  # the bot no longer answers
    card = agent.get(f"/api/agent/calls/{call_id}").json()
    deadline = time.monotonic() + 5
    while not any(t["who"] == "caller" and t["text"] == "快递三天没动了" for t in card["transcript"]):
        assert time.monotonic() < deadline, card
        time.sleep(0.1)
        card = agent.get(f"/api/agent/calls/{call_id}").json()
    assert card["live"] and card["context"]["channel"] == "webchat"
    assert agent.post(f"/api/agent/chats/{call_id}/messages", json={"text": ""}).status_code == 400
    assert agent.post("/api/agent/chats/nope/messages", json={"text": "hi"}).status_code == 404
    assert agent.post(f"/api/agent/calls/{call_id}/hangup", json={}).status_code == 204
    cust.wait_for(lambda m: "客服已结束本次会话" in m["text"] and m["end"])
    deadline = time.monotonic() + 5
    while agent.get("/api/agent/state").json()["agent"]["presence"] != "wrap_up":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert agent.post(f"/api/agent/chats/{call_id}/messages", json={"text": "还在吗"}).status_code == 404
    r = agent.post(f"/api/agent/calls/{call_id}/wrapup", json={"disposition": "follow_up", "note": "催快递"})
    assert r.status_code == 204, r.text
    assert agent.get("/api/agent/state").json()["agent"]["presence"] == "available"
    assert cust.c.post(f"/api/chat/sessions/{cust.id}/messages", json={"text": "喂"}).status_code == 410
    rec = _record(app, call_id)
    assert rec.channel == "webchat" and rec.outcome == "transferred" and rec.end_reason == "agent_hangup"
    assert rec.agent_id and rec.disposition == "follow_up" and rec.agent_note == "催快递"
    bot_part = [t for t in rec.turns if t.speaker == "bot"]
    agent_part = [t for t in rec.turns if t.speaker == "agent"]
    assert any("order_read" in t.actions or "caller_verified" in t.actions for t in bot_part)
    assert any(t.bot_text == "您好，我是小王，请问快递有什么问题？" for t in agent_part)
    assert any(t.caller_text == "快递三天没动了" for t in agent_part)
    assert max(t.index for t in bot_part) < min(t.index for t in agent_part)  # the bot part, then the agent's
    assert rec.extra["queue"]["offers"] == 1 and rec.extra["agents"] == ["chat1"]


def test_customer_leaving_ends_the_chat_for_the_agent(server) -> None:
    url, app = server
    agent = _agent(url)
    cust = Customer(url)
    cust.say(text="转人工")
    offer = _offer(agent)
    assert agent.post(f"/api/agent/chats/{offer['offer_id']}/accept", json={}).status_code == 200
    cust.wait_for(lambda m: "已接入" in m["text"])
    assert cust.c.delete(f"/api/chat/sessions/{cust.id}").status_code == 204
    deadline = time.monotonic() + 5
    while agent.get("/api/agent/state").json()["agent"]["presence"] != "wrap_up":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    rec = _record(app, cust.id)
    assert rec.outcome == "transferred" and rec.end_reason == "caller_hangup" and rec.agent_id
    assert agent.post(f"/api/agent/calls/{cust.id}/wrapup", json={"disposition": "resolved"}).status_code == 204


def test_nobody_signed_in_books_a_callback(server) -> None:
    url, _app = server
    cust = Customer(url)
    r = cust.say(text="转人工")
    assert r["closed"] is True
    last = r["messages"][-1]
    assert last["ticket"] and "现在没有人工客服在线" in last["text"] and last["ticket"] in last["text"]


def test_nobody_answering_in_time_books_a_callback(server) -> None:
    url, app = server
    agent = _agent(url)
    cust = Customer(url)
    cust.say(text="转人工")
    offer = _offer(agent)
    assert agent.post(f"/api/agent/offers/{offer['offer_id']}/decline", json={}).status_code == 204
    last = cust.wait_for(lambda m: m.get("ticket"), timeout=20)  # queue_max_wait_s = 6
    assert "人工客服都在忙" in last["text"] and last["end"]
    assert cust.c.get(f"/api/chat/sessions/{cust.id}").json()["closed"] is True
    rec = _record(app, cust.id)
    assert rec.outcome == "callback" and rec.extra["callback_why"] == "timeout"
    a = agent.post(f"/api/agent/chats/{offer['offer_id']}/accept", json={})
    assert a.status_code == 409
