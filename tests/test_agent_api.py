"""The agent desktop's pages and APIs under the real app: who may use them, and clear errors for bad requests."""

from __future__ import annotations

import httpx
import pytest
from browser.server import serve_in_thread

from ivr.config import load_settings
from ivr.services.agents import AccountStore
from ivr.services.migrate import ensure_schema

pytestmark = pytest.mark.timeout(180)

DESK_APIS = [
    ("GET", "/api/agent/state", None),
    ("GET", "/api/agent/events", None),
    ("POST", "/api/agent/presence", {"state": "available"}),
    ("POST", "/api/agent/offers/of_x/accept", {"sdp": "v=0", "type": "offer"}),
    ("POST", "/api/agent/offers/of_x/decline", {}),
    ("POST", "/api/agent/calls/c1/hangup", {}),
    ("POST", "/api/agent/calls/c1/wrapup", {"disposition": "resolved", "note": ""}),
    ("GET", "/api/agent/calls/c1", None),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    settings = load_settings({"data_dir": str(tmp_path_factory.mktemp("agentapi"))})
    ensure_schema(settings.database_url)
    store = AccountStore(settings.database_url)
    store.add("desk1", role="agent", password="desk-pass-1", skills=["orders"])
    store.add("boss1", role="admin", password="admin-pass-1")
    store.add("lead1", role="supervisor", password="lead-pass-1")
    with serve_in_thread(settings) as (url, app):
        yield url, app


def _login(c: httpx.Client, user: str, password: str) -> None:
    assert c.post("/api/login", json={"username": user, "password": password}).status_code == 200


def _call(c: httpx.Client, method: str, path: str, body) -> httpx.Response:
    return c.request(method, path, json=body, timeout=5) if body is not None else c.request(method, path, timeout=5)


def test_anonymous_is_refused_everywhere(server):
    url, _ = server
    with httpx.Client(base_url=url, follow_redirects=False) as c:
        page = c.get("/agent")
        assert page.status_code == 303 and page.headers["location"] == "/login?next=/agent"
        for method, path, body in DESK_APIS:
            r = _call(c, method, path, body)
            assert r.status_code == 401 and r.json() == {"error": "login required"}, (path, r.status_code)


def test_admin_role_is_refused_the_desktop(server):
    url, _ = server
    with httpx.Client(base_url=url, follow_redirects=False) as c:
        _login(c, "boss1", "admin-pass-1")
        assert c.get("/agent").status_code == 403
        for method, path, body in DESK_APIS:
            r = _call(c, method, path, body)
            assert r.status_code == 403 and r.json()["role"] == "admin", path


def test_agent_uses_the_desk_and_gets_clear_errors(server):
    url, app = server
    with httpx.Client(base_url=url) as c:
        _login(c, "desk1", "desk-pass-1")
        page = c.get("/agent")
        assert page.status_code == 200 and "客服工作台" in page.text
        st = c.get("/api/agent/state").json()
        assert st["agent"]["username"] == "desk1" and st["agent"]["presence"] == "offline"
        assert "resolved" in st["dispositions"] and st["offer"] is None
        assert c.post("/api/agent/presence", json={"state": "sleeping"}).status_code == 400
        bad = c.post("/api/agent/presence", content=b"not json", headers={"Content-Type": "application/json"})
        assert bad.status_code == 400
        assert c.post("/api/agent/presence", content=b"not json").status_code == 415  # JSON Content-Type only
        r = c.post("/api/agent/presence", json={"state": "away"})
        assert r.status_code == 200 and r.json()["presence"] == "away"
        r = c.post("/api/agent/offers/of_gone/accept", json={"sdp": "v=0", "type": "offer"})
        assert r.status_code == 409 and "no longer offered" in r.json()["error"]
        assert c.post("/api/agent/offers/of_gone/decline", json={}).status_code == 409
        assert c.post("/api/agent/calls/nope/hangup", json={}).status_code == 404
        assert c.post("/api/agent/calls/nope/wrapup", json={"disposition": "resolved"}).status_code == 404
        assert c.get("/api/agent/calls/nope").status_code == 404
    with httpx.Client(base_url=url) as c:  # a supervisor takes calls too
        _login(c, "lead1", "lead-pass-1")
        assert c.get("/api/agent/state").json()["agent"]["username"] == "lead1"
        r = c.get("/api/agent/calls/nope")  # a supervisor may open any call's card, but not one that is not there
        assert r.status_code == 404 and "nope" in r.json()["error"]


def test_closing_the_desktop_stops_the_agent_being_rung(server):
    url, app = server
    with httpx.Client(base_url=url) as c:
        _login(c, "desk1", "desk-pass-1")
        with c.stream("GET", "/api/agent/events", timeout=10) as events:
            assert events.headers["content-type"].startswith("text/event-stream")
            assert c.post("/api/agent/presence", json={"state": "available"}).json()["presence"] == "available"
            for line in events.iter_lines():
                if line.startswith("data:") and '"presence": "available"' in line:
                    break
        st = c.get("/api/agent/state").json()  # the stream closed: nobody watches this desktop
        deadline = 50
        while st["agent"]["presence"] != "offline" and deadline:
            import time

            time.sleep(0.1)
            deadline -= 1
            st = c.get("/api/agent/state").json()
        assert st["agent"]["presence"] == "offline"
