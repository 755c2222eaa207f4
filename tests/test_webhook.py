"""The messaging webhook on the real app (uvicorn on loopback), the real dialogue and the seeded demo shop, driven by
the example client in scripts/webhook_client.py: a signed message gets a signed reply; a wrong signature, an old
timestamp or a replayed message id is refused with a clear error and nothing is stored (no record, no message id,
no turn in the conversation)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from browser.server import serve_in_thread

from ivr.channels.webhook import signature
from ivr.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "scripts" / "webhook_client.py"
SECRET = "test-secret-0123456789abcdef"
ORDER = "100000000002"  # delivered 3 days ago (FIXED_ORDERS)

sys.path.insert(0, str(ROOT / "scripts"))
import webhook_client  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("webhook") / "data"
    settings = load_settings({"data_dir": str(data), "demo_data": True, "webhook_secrets": {"reference": SECRET},
                              "webhook_max_skew_s": 60})
    with serve_in_thread(settings) as (url, app):
        yield url, app


def _client(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CLIENT), "--url", url, "--secret", SECRET, *args],
                          capture_output=True, text=True, timeout=60)


def test_example_client_checks_an_order_over_the_webhook(server) -> None:
    url, app = server
    r = _client(url, "--conversation", "wx-1", "--json", "我想查一下订单")
    assert r.returncode == 0, r.stderr
    reply = json.loads(r.stdout)
    texts = [m["text"] for m in reply["messages"]]
    assert "欢迎" in texts[0] and "订单号" in texts[-1]  # a new conversation: greeting, then the answer
    assert reply["conversation_id"] == "wx-1" and reply["closed"] is False
    r = _client(url, "--conversation", "wx-1", ORDER)
    assert r.returncode == 0 and "后四位" in r.stdout, r.stdout + r.stderr
    tail = app.state.calls.parts.shop.get_order(ORDER).phone[-4:]
    r = _client(url, "--conversation", "wx-1", "--json", tail)
    reply = json.loads(r.stdout)
    (msg,) = reply["messages"]
    assert "核实通过" in msg["text"] and ORDER in msg["text"] and "请按" not in msg["text"]
    assert msg["cards"][0]["order_id"] == ORDER and msg["cards"][0]["status"] == "delivered"
    assert {q["label"] for q in msg["quick_replies"]} >= {"查物流", "退货"}
    r = _client(url, "--conversation", "wx-1", "--key", "3", "--label", "退货")  # a quick reply: the menu key
    assert r.returncode == 0 and "原因" in r.stdout, r.stdout


def _post(url: str, payload: dict, *, secret: str = SECRET, ts: int | None = None, sig: str | None = None):
    import httpx

    body = json.dumps(payload, ensure_ascii=False).encode()
    t = str(int(time.time()) if ts is None else ts)
    headers = {"Content-Type": "application/json", "X-Ivr-Timestamp": t,
               "X-Ivr-Signature": sig or signature(secret, t, body)}
    return httpx.post(f"{url}/api/webhook/reference", content=body, headers=headers, timeout=30)


def _counts(app) -> tuple[int, int, int]:
    """(message ids kept, records stored, open conversations)."""
    from sqlalchemy import func, select

    from ivr.services.channels.tables import WebhookMessage
    from ivr.services.db import transaction
    from ivr.services.records.tables import CallRow

    with transaction(app.state.settings.database_url) as s:
        ids = s.scalar(select(func.count()).select_from(WebhookMessage))
        recs = s.scalar(select(func.count()).select_from(CallRow))
    return ids, recs, len(app.state.chat_hub) if getattr(app.state, "chat_hub", None) else 0


def test_wrong_signature_old_timestamp_and_replay_are_refused_and_nothing_is_stored(server) -> None:
    url, app = server
    msg = {"message_id": "m-refuse-1", "conversation_id": "wx-2", "from": "u2", "text": "查物流"}
    before = _counts(app)
    r = _post(url, msg, secret="not-the-secret-at-all")
    assert r.status_code == 401 and r.json()["code"] == "bad_signature" and "签名错误" in r.json()["error"]
    r = _post(url, msg, sig="sha256=" + "0" * 64)
    assert r.status_code == 401 and r.json()["code"] == "bad_signature"
    r = _post(url, msg, ts=int(time.time()) - 3600)  # correctly signed, an hour old
    assert r.status_code == 401 and r.json()["code"] == "stale_timestamp" and "时间戳" in r.json()["error"]
    assert re.search(r"相差 36\d\d 秒，最多 \d+ 秒", r.json()["error"])  # the pack's text with its numbers filled
    r = httpx_post_unsigned(url, msg)
    assert r.status_code == 401 and r.json()["code"] == "unsigned" and "签名缺失" in r.json()["error"]
    assert _counts(app) == before  # no message id kept, no conversation opened, no record
    ok = _post(url, msg)
    assert ok.status_code == 200 and ok.json()["messages"], ok.text
    ts = ok.headers["X-Ivr-Timestamp"]
    assert ok.headers["X-Ivr-Signature"] == signature(SECRET, ts, ok.content)  # the reply is signed too
    after_first = _counts(app)
    assert after_first[0] == before[0] + 1 and after_first[2] == before[2] + 1
    session = app.state.chat_hub.thread_session(("reference", "wx-2"))
    turns = len(session.messages)
    replay = _post(url, msg)  # the same message id again, freshly signed
    assert replay.status_code == 409 and replay.json()["code"] == "replayed" and "m-refuse-1" in replay.json()["error"]
    assert _counts(app) == after_first and len(session.messages) == turns
    status, body, _ = webhook_client.send(url, SECRET, {**msg, "message_id": "m-refuse-2", "text": ""})
    assert status == 400 and body["code"] == "bad_payload"
    r = httpx_post_unsigned(url, msg, adapter="nope")
    assert r.status_code == 404 and r.json()["code"] == "unknown_adapter"


def httpx_post_unsigned(url: str, payload: dict, adapter: str = "reference"):
    import httpx

    return httpx.post(f"{url}/api/webhook/{adapter}", json=payload, timeout=30)


def test_message_ids_expire_after_the_retention(tmp_path) -> None:
    from datetime import UTC, datetime, timedelta

    from ivr.services.channels.replay import SeenMessages
    from ivr.services.migrate import ensure_schema

    url = f"sqlite:///{tmp_path / 'ids.db'}"
    ensure_schema(url)
    seen = SeenMessages(url, timedelta(hours=1))
    t0 = datetime(2026, 12, 6, 12, tzinfo=UTC)
    assert seen.claim("reference", "a", now=t0) and not seen.claim("reference", "a", now=t0 + timedelta(minutes=59))
    assert seen.claim("other", "a", now=t0)  # ids are per adapter
    assert seen.claim("reference", "b", now=t0 + timedelta(hours=2)) and seen.count("reference") == 1  # a purged


def test_example_client_reports_a_refusal(server) -> None:
    url, _app = server
    r = _client(url, "--conversation", "wx-3", "--timestamp", str(int(time.time()) - 3600), "你好")
    assert r.returncode == 1 and "stale_timestamp" in r.stderr


def test_an_ended_thread_starts_a_new_conversation(server) -> None:
    url, app = server
    status, first, signed = webhook_client.send(url, SECRET, {"message_id": "m-new-1", "conversation_id": "wx-4",
                                                              "text": "你好"})
    assert status == 200 and signed and "欢迎" in first["messages"][0]["text"]
    old = app.state.chat_hub.thread_session(("reference", "wx-4"))
    old.close()  # e.g. the customer rated the service and the bot said goodbye
    status, again, _ = webhook_client.send(url, SECRET, {"message_id": "m-new-2", "conversation_id": "wx-4",
                                                         "text": "查物流"})
    assert status == 200 and "欢迎" in again["messages"][0]["text"] and "订单号" in again["messages"][-1]["text"]
    new = app.state.chat_hub.thread_session(("reference", "wx-4"))
    assert new.session_id != old.session_id and new.channel == "messaging"
