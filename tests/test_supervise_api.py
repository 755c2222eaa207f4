"""The supervise API's refusals over HTTP (real app, real logins): only supervisors, only live agent calls."""

from __future__ import annotations

import httpx
import pytest
from browser.server import serve_in_thread

from ivr.config import load_settings
from ivr.services.agents import AccountStore
from ivr.services.migrate import ensure_schema

pytestmark = pytest.mark.timeout(120)


def test_supervise_refusals(tmp_path):
    settings = load_settings({"data_dir": str(tmp_path / "d")})
    ensure_schema(settings.database_url)
    store = AccountStore(settings.database_url)
    store.add("wang.li", role="agent", password="desk-pass-1")
    store.add("lead", role="supervisor", password="lead-pass-1")
    store.add("root", role="admin", password="root-pass-1")
    offer = {"sdp": "v=0", "type": "offer", "mode": "listen"}
    with serve_in_thread(settings) as (url, _app):
        with httpx.Client(base_url=url, timeout=30) as anon:
            assert anon.post("/api/wall/calls/x/supervise", json=offer).status_code == 401
        for user, pw in (("wang.li", "desk-pass-1"), ("root", "root-pass-1")):
            with httpx.Client(base_url=url, timeout=30) as c:
                assert c.post("/api/login", json={"username": user, "password": pw}).is_success
                assert c.post("/api/wall/calls/x/supervise", json=offer).status_code == 403
                assert c.post("/api/wall/calls/x/supervise/mode", json={"mode": "barge"}).status_code == 403
        with httpx.Client(base_url=url, timeout=30) as c:
            assert c.post("/api/login", json={"username": "lead", "password": "lead-pass-1"}).is_success
            assert c.post("/api/wall/calls/x/supervise", json={**offer, "mode": "shout"}).status_code == 400
            assert c.post("/api/wall/calls/x/supervise", json={"mode": "listen"}).status_code == 400
            r = c.post("/api/wall/calls/nope/supervise", json=offer)
            assert r.status_code == 404 and "nope" in r.json()["error"]
            assert c.post("/api/wall/calls/nope/supervise/mode", json={"mode": "barge"}).status_code == 409
            assert c.post("/api/wall/calls/nope/supervise/mode", json={"mode": "x"}).status_code == 400
            assert c.post("/api/wall/calls/nope/supervise/end", json={}).status_code == 409
            assert c.post("/api/wall/calls/nope/supervise", json=offer,
                          headers={"Origin": "http://evil.example"}).status_code == 403  # CSRF guard
            page = c.get("/wall").text
            assert 'data-role="supervisor"' in page and "wall_supervise.js" in page
