"""Security audit (availability), found against the running service: ``POST /api/chat/sessions`` is anonymous and had
no per-client limit, so one client opened chats until ``chat_max_sessions`` (500) were live (120 in a second or two
in the probe), and every other customer got 503 for the idle timeout (30 min) with nothing more sent. Now one client
address (an IPv6 /64 counts as one) holds at most a tenth of ``chat_max_sessions`` live chats (at least 2); beyond
that 429 + Retry-After, while other clients still get theirs. A conversation that ended frees its place."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from ivr.config import load_settings
from ivr.web.app import create_app


@pytest.fixture
def app(tmp_path):
    return create_app(load_settings({"data_dir": str(tmp_path / "data"), "demo_data": True, "sip_port": 0,
                                     "chat_max_sessions": 40}))


def _open(c: TestClient) -> dict:
    r = c.post("/api/chat/sessions", json={})
    assert r.status_code == 201, r.text
    return r.json()


def test_one_client_cannot_take_every_chat(app):
    with TestClient(app, base_url="http://testserver", client=("203.0.113.5", 40000)) as a, \
            TestClient(app, base_url="http://testserver", client=("198.51.100.7", 40000)) as b:
        mine = [_open(a) for _ in range(4)]  # 40 // 10
        r = a.post("/api/chat/sessions", json={})
        assert r.status_code == 429 and r.headers["Retry-After"] and "error" in r.json(), r.text
        _open(b)  # somebody else is still served
        first = mine[0]
        assert a.delete(f"/api/chat/sessions/{first['session_id']}",
                        headers={"X-Chat-Token": first["chat_token"]}).status_code == 204
        _open(a)  # an ended conversation frees its place


def test_an_ipv6_slash_64_counts_as_one_client(app):
    clients = [TestClient(app, base_url="http://testserver", client=(f"2001:db8:1:2::{i}", 40000)) for i in range(5)]
    for c in clients[:4]:
        _open(c)
    assert clients[4].post("/api/chat/sessions", json={}).status_code == 429
    with TestClient(app, base_url="http://testserver", client=("2001:db8:1:3::1", 40000)) as other:
        _open(other)


async def test_parallel_requests_cannot_slip_past_the_limit(app):
    import asyncio

    import httpx

    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        rs = await asyncio.gather(*(c.post("/api/chat/sessions", json={}) for _ in range(12)))
    assert sorted(r.status_code for r in rs) == [201] * 4 + [429] * 8
