"""The web chat API (/api/chat/...) on the real app, the real dialogue engine and the seeded SQLite demo shop:
verification before any order detail, text-suited replies (no keypad talk, quick replies, order cards), the
per-conversation token, the CSRF rules, the WebSocket, and the conversation stored as a record (channel webchat)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from ivr.config import load_settings
from ivr.services.records import RecordStore
from ivr.services.shop.seed import FIXED_ORDERS
from ivr.web.app import create_app

ORDER = "100000000001"  # in transit (FIXED_ORDERS)
KEYPAD_WORDS = ("请按", "按键", "井号", "星号", "按1", "按2")


@pytest.fixture
def client(tmp_path):
    settings = load_settings({"data_dir": str(tmp_path / "data"), "demo_data": True, "sip_port": 0})
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver") as c:  # lifespan: the real call manager and its shop
        c.app_ = app
        yield c


def _phone_tail(client) -> str:
    shop = client.app_.state.calls.parts.shop
    return shop.get_order(ORDER).phone[-4:]


def _new(client) -> dict:
    r = client.post("/api/chat/sessions", json={}, headers={"Origin": "http://testserver"})
    assert r.status_code == 201, r.text
    return r.json()


def _say(client, s: dict, **body) -> dict:
    r = client.post(f"/api/chat/sessions/{s['session_id']}/messages", json=body,
                    headers={"X-Chat-Token": s["chat_token"], "Origin": "http://testserver"})
    assert r.status_code == 200, r.text
    return r.json()


def test_check_an_order_after_verification_with_text_replies(client) -> None:
    assert ORDER in FIXED_ORDERS
    s = _new(client)
    greeting = s["messages"][0]
    assert greeting["role"] == "bot" and "欢迎" in greeting["text"]
    assert {q["label"] for q in greeting["quick_replies"]} >= {"查订单", "查物流", "退货", "人工服务"}
    r = _say(client, s, key="1", label="查订单")  # the quick reply sends its key
    assert [m["role"] for m in r["messages"]] == ["customer", "bot"]
    assert r["messages"][0]["text"] == "查订单"
    ask = r["messages"][1]
    assert "订单号" in ask["text"] and not any(w in ask["text"] for w in KEYPAD_WORDS), ask["text"]
    r = _say(client, s, text=ORDER)
    bot = r["messages"][1]
    assert "后四位" in bot["text"] and bot["cards"] == []  # nothing about the order before verification
    assert "华为" not in bot["text"]
    r = _say(client, s, text=_phone_tail(client))
    assert r["messages"][0]["text"] == "****"  # the answer to the verification question is masked in the chat
    bot = r["messages"][1]
    assert "核实通过" in bot["text"] and ORDER in bot["text"], bot["text"]  # digits, not 幺零零…
    (card,) = bot["cards"]
    assert card["order_id"] == ORDER and card["status"] == "in_transit" and card["shipment"]["tracking_no"]
    r = _say(client, s, text="没有了，谢谢")
    bot = r["messages"][1]
    assert bot["state"] == "csat" and [q["key"] for q in bot["quick_replies"]] == ["5", "4", "3", "2", "1"]
    assert not any(w in bot["text"] for w in KEYPAD_WORDS), bot["text"]
    r = _say(client, s, key="5", label="5分")
    assert r["closed"] is True and r["messages"][1]["end"] is True
    gone = client.post(f"/api/chat/sessions/{s['session_id']}/messages", json={"text": "还在吗"},
                       headers={"X-Chat-Token": s["chat_token"]})
    assert gone.status_code == 410
    rec = RecordStore(client.app_.state.settings.database_url).get(s["session_id"])
    assert rec is not None and rec.channel == "webchat" and rec.csat == 5 and rec.outcome == "self_served"
    said = [t.caller_text for t in rec.turns]
    assert ORDER in said and _phone_tail(client) not in said  # the phone tail is stored masked
    assert any("order_read" in t.actions for t in rec.turns)
    from ivr.services.records.period import parse_window
    from ivr.services.records.stats import Filters, Stats

    stats = Stats(client.app_.state.settings.database_url)
    chat_only = stats.report(Filters(parse_window("7d"), "webchat"))
    assert "webchat" in chat_only["channels"] and chat_only["kpis"]["calls"] == 1  # the dashboard's channel filter
    assert stats.report(Filters(parse_window("7d"), "webrtc"))["kpis"]["calls"] == 0


def test_token_and_csrf_rules(client) -> None:
    s = _new(client)
    url = f"/api/chat/sessions/{s['session_id']}/messages"
    assert client.post(url, json={"text": "查订单"}).status_code == 401
    assert client.post(url, json={"text": "查订单"}, headers={"X-Chat-Token": "x" * 43}).status_code == 403
    other = _new(client)  # one conversation's token does not open another
    assert client.post(url, json={"text": "hi"}, headers={"X-Chat-Token": other["chat_token"]}).status_code == 403
    assert client.get(f"/api/chat/sessions/{s['session_id']}").status_code == 401
    cross = client.post(url, json={"text": "查订单"},
                        headers={"X-Chat-Token": s["chat_token"], "Origin": "https://evil.example"})
    assert cross.status_code == 403
    form = client.post(url, content="text=hi", headers={"X-Chat-Token": s["chat_token"],
                                                         "Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415
    assert client.post("/api/chat/sessions", json={}, headers={"Origin": "https://evil.example"}).status_code == 403
    bad = client.post(url, json={"key": "12"}, headers={"X-Chat-Token": s["chat_token"]})
    assert bad.status_code == 400 and "key" in bad.json()["error"]
    hist = client.get(f"/api/chat/sessions/{s['session_id']}", headers={"X-Chat-Token": s["chat_token"]}).json()
    assert len(hist["messages"]) == 1  # refused requests added nothing
    assert client.delete(f"/api/chat/sessions/{s['session_id']}",
                         headers={"X-Chat-Token": s["chat_token"]}).status_code == 204
    rec = RecordStore(client.app_.state.settings.database_url).get(s["session_id"])
    assert rec is not None and rec.end_reason == "caller_hangup"


def test_websocket_pushes_both_sides_and_refuses_strangers(client) -> None:
    s = _new(client)
    path = f"/api/chat/sessions/{s['session_id']}/ws"
    with client.websocket_connect(path, headers={"Origin": "http://testserver"}) as ws:
        ws.send_json({"type": "auth", "token": s["chat_token"]})
        hist = ws.receive_json()
        assert hist["type"] == "history" and hist["messages"][0]["role"] == "bot"
        ws.send_json({"type": "message", "text": "我要查物流"})
        mine, bot = ws.receive_json(), ws.receive_json()
        assert mine["message"]["role"] == "customer" and mine["message"]["text"] == "我要查物流"
        assert bot["message"]["role"] == "bot" and "订单号" in bot["message"]["text"]
        ws.send_json({"type": "message"})
        assert ws.receive_json()["type"] == "error"
        ws.send_text("{not json")
        assert ws.receive_json()["type"] == "error"
        ws.send_bytes(b"\x00\xff")
        assert ws.receive_json()["type"] == "error"
        ws.send_json({"type": "message", "key": "0", "label": "人工服务"})  # still served after bad frames
        assert ws.receive_json()["message"]["text"] == "人工服务"
        assert ws.receive_json()["message"]["role"] == "bot"
    with client.websocket_connect(path) as ws:
        ws.send_json({"type": "auth", "token": "wrong"})
        with pytest.raises(WebSocketDisconnect) as e:
            ws.receive_json()
        assert e.value.code == 4403
    with pytest.raises(WebSocketDisconnect) as e, \
            client.websocket_connect(path, headers={"Origin": "https://evil.example"}) as ws:
        ws.receive_json()
    assert e.value.code == 4403


def test_chat_page_has_no_inline_code(client) -> None:
    r = client.get("/chat")
    assert r.status_code == 200 and "在线客服" in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert "<script>" not in r.text and "style=" not in r.text and "<style" not in r.text
    assert '<script src="/static/chat.js">' in r.text
    assert client.get("/static/chat.js").status_code == 200


def test_idle_conversations_are_closed_and_recorded(client) -> None:
    import time

    from ivr.web.chat import chat_hub

    hub = chat_hub(client.app_)
    s = _new(client)
    thread, new = hub.thread(("reference", "idle-1"), "messaging")
    assert new and hub.thread(("reference", "idle-1"), "messaging") == (thread, False)
    assert hub.sweep(now=time.monotonic() + hub.idle_timeout_s - 5) == 0  # not idle long enough
    assert hub.sweep(now=time.monotonic() + hub.idle_timeout_s + 5) >= 2
    assert hub.get(s["session_id"]) is None and hub.thread_session(("reference", "idle-1")) is None
    r = client.post(f"/api/chat/sessions/{s['session_id']}/messages", json={"text": "在吗"},
                    headers={"X-Chat-Token": s["chat_token"]})
    assert r.status_code == 403  # gone: the page starts a new conversation
    store = RecordStore(client.app_.state.settings.database_url)
    for sid, channel in ((s["session_id"], "webchat"), (thread.session_id, "messaging")):
        rec = store.get(sid)
        assert rec is not None and rec.channel == channel and rec.end_reason == "timeout"


def test_at_capacity_new_conversations_get_503_until_one_ends(tmp_path) -> None:
    app = create_app(load_settings({"data_dir": str(tmp_path / "cap"), "demo_data": True, "sip_port": 0, "chat_max_sessions": 2}))
    with TestClient(app, base_url="http://testserver") as c:
        first, _second = _new(c), _new(c)
        r = c.post("/api/chat/sessions", json={})
        assert r.status_code == 503 and r.headers["Retry-After"] and "繁忙" in r.json()["error"]
        assert c.delete(f"/api/chat/sessions/{first['session_id']}",
                        headers={"X-Chat-Token": first["chat_token"]}).status_code == 204
        assert c.post("/api/chat/sessions", json={}).status_code == 201  # an ended conversation frees its slot


def test_asking_for_a_person_books_a_callback_with_the_transcript(client) -> None:
    from sqlalchemy import select

    from ivr.services.db import transaction
    from ivr.services.shop.models import TicketRow

    s = _new(client)
    _say(client, s, text=ORDER)
    _say(client, s, text=_phone_tail(client))
    r = _say(client, s, text="转人工")
    transfer, booked = r["messages"][1:]  # the bot's answer, then the callback notice
    assert transfer["transfer"] and "转接人工客服" in transfer["text"] and "请稍候" not in transfer["text"]
    assert booked["ticket"] and booked["ticket"] in booked["text"] and "手机号" in booked["text"]
    assert r["closed"] is True
    rec = RecordStore(client.app_.state.settings.database_url).get(s["session_id"])
    assert rec.outcome == "callback" and rec.extra["callback_ticket"] == booked["ticket"]
    with transaction(client.app_.state.settings.database_url) as db:
        t = db.scalars(select(TicketRow).where(TicketRow.ticket_id == booked["ticket"])).one()
        assert t.kind == "callback" and t.order_id == ORDER and t.context["handoff"]["transcript"]


def test_confirmations_offer_yes_no_buttons_and_no_turn_is_silent(client) -> None:
    s = _new(client)
    r = _say(client, s, text="取消订单")
    r = _say(client, s, key="1", label="1")  # a key where a number is expected is read as typed text
    assert r["messages"][1]["text"] and r["messages"][1]["state"] == "ask_order"
    _say(client, s, text="100000000004")  # paid, not shipped: cancellable (FIXED_ORDERS)
    tail = client.app_.state.calls.parts.shop.get_order("100000000004").phone[-4:]
    bot = _say(client, s, text=tail)["messages"][1]
    assert bot["state"] == "cancel_order.confirm" and "100000000004" in bot["text"]
    assert bot["quick_replies"] == [{"label": "是", "key": "1"}, {"label": "不是", "key": "2"}]
    assert not any(w in bot["text"] for w in KEYPAD_WORDS), bot["text"]
    bot = _say(client, s, key="2", label="不是")["messages"][1]  # declined: nothing written
    assert "order_cancelled" not in bot["actions"]
    assert client.app_.state.calls.parts.shop.get_order("100000000004").status == "paid"
