"""Hypothesis-generated bodies to the chat and webhook APIs (real app, real dialogue, demo shop): never a 5xx, and a
refused body leaves the conversation as it was. A fixed set of bodies (``@example``: every shape each API accepts or
refuses, at its limits) always runs before 100 generated ones per test: the bodies have four shapes and the APIs
a handful of branches, so more examples mostly repeat the same paths."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ivr.channels.webhook import signature
from ivr.config import load_settings
from ivr.web.app import create_app

SECRET = "fuzz-secret-0123456789abcdef"
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                    max_leaves=12)
BODIES = st.one_of(
    JSON,
    st.fixed_dictionaries({"text": st.text(max_size=600)}),
    st.fixed_dictionaries({"key": st.text(max_size=3), "label": st.text(max_size=50) | st.integers()}),
    st.fixed_dictionaries({"message_id": st.text(max_size=140), "conversation_id": st.text(max_size=140),
                           "text": st.text(max_size=600) | st.integers()}),
)
# Always played first: valid and refused texts and keys, the length limit, wrong types, non-objects, webhook ids.
NASTY = [
    {"text": "怎么退货"}, {"text": "转人工"}, {"text": "0"}, {"text": "x" * 500}, {"text": "x" * 501}, {"text": ""},
    {"text": " \n\t"}, {"text": "\x00\u2028\ufeff 退货"}, {"text": 5}, {"text": None}, {"text": ["怎么退货"]},
    {"text": float("inf")}, {"key": "1", "label": "退货"}, {"key": "#", "label": 5}, {"key": "", "label": "x"},
    {"key": "12", "label": "x" * 50}, {"key": 1}, {"message_id": "m", "conversation_id": "c", "text": "怎么退货"},
    {"message_id": "x" * 140, "conversation_id": "", "text": 5}, {}, [], None, "怎么退货", 1e308, [[[[[]]]]],
    {"text": "\ud800"}, {"text": "退货\udc00"}, {"key": "1", "label": "\udfff"},  # lone surrogates (JSON escapes)
    {"message_id": "m", "conversation_id": "c", "text": "\ud800"},
]
RAW = [b"", b"{", b"null", b"\xff\xfe", b'{"text": "\xe9"}', b'{"message_id": "m", "conversation_id": "c"}',
       b'{"message_id": "m", "conversation_id": "c", "text": "\u9000\u8d27"}', b"[" * 64,
       b'{"message_id": "m2", "conversation_id": "c", "text": "\\ud800"}']


def _nasty(**more: list):
    """``@example`` for each body of NASTY (with ``more``'s values in turn for the other arguments)."""
    def add(test):
        for i, body in enumerate(NASTY):
            test = example(body=body, **{k: v[i % len(v)] for k, v in more.items()})(test)
        return test
    return add


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    data = tmp_path_factory.mktemp("chat-fuzz") / "data"
    app = create_app(load_settings({"data_dir": str(data), "demo_data": True, "sip_port": 0,
                                    "webhook_secrets": {"reference": SECRET}}))
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as c:
        yield c


@_nasty()
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES)
def test_chat_messages_never_5xx(client, body) -> None:
    s = client.post("/api/chat/sessions", json={}).json()
    url = f"/api/chat/sessions/{s['session_id']}/messages"
    r = client.post(url, content=json.dumps(body), headers={"X-Chat-Token": s["chat_token"],
                                                             "Content-Type": "application/json"})
    assert r.status_code in (200, 400), (r.status_code, r.text)
    hist = client.get(f"/api/chat/sessions/{s['session_id']}", headers={"X-Chat-Token": s["chat_token"]}).json()
    assert len(hist["messages"]) >= 3 if r.status_code == 200 else len(hist["messages"]) == 1
    client.delete(f"/api/chat/sessions/{s['session_id']}", headers={"X-Chat-Token": s["chat_token"]})


@_nasty(raw=RAW)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, raw=st.binary(max_size=64))
def test_signed_webhook_bodies_never_5xx(client, body, raw) -> None:
    for data in (json.dumps(body).encode(), raw):
        ts = str(int(time.time()))
        r = client.post("/api/webhook/reference", content=data, headers={
            "Content-Type": "application/json", "X-Ivr-Timestamp": ts, "X-Ivr-Signature": signature(SECRET, ts, data)})
        assert r.status_code in (200, 400, 409), (r.status_code, r.text)
        assert r.status_code != 200 or r.json()["messages"]


@pytest.mark.parametrize("user, password", [("boss", "\ud800"), ("\udfff", "x"), ("boss", "ok\udc00")])
def test_login_with_lone_surrogates_is_refused_not_a_crash(client, user, password) -> None:
    """JSON may escape a lone surrogate (\\ud800); Python decodes it to text no hash or store accepts: 400."""
    r = client.post("/api/login", content=json.dumps({"username": user, "password": password}),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "error" in r.json(), (r.status_code, r.text)
