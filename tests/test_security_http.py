"""The HTTP surface against the real app under uvicorn (issue 12): per-call tokens, records for supervisors only,
no API explorer, a token on /metrics, 413 before a body is read, login throttling and the hash cap, event streams
that end with the login, CSRF (415/403) and the security headers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import httpx
import pytest
from browser.server import serve_in_thread
from fastapi.testclient import TestClient

from ivr.config import load_settings
from ivr.services.agents import AccountStore
from ivr.services.migrate import ensure_schema
from ivr.telephony.webrtc.client import WebRtcClient
from ivr.web import throttle
from ivr.web.app import create_app
from ivr.web.callaccess import mask_peer, public_record, record_headers
from ivr.web.throttle import Windows

pytestmark = pytest.mark.timeout(240)
PASSWORDS = {"desk1": "desk-pass-1", "lead1": "lead-pass-1", "boss1": "boss-pass-1"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # no demo shop (seeding 1200 orders at start): nothing here reads orders
    settings = load_settings({"data_dir": str(tmp_path_factory.mktemp("sechttp")), "login_ip_max_failures": 1000,
                              "demo_data": False})
    ensure_schema(settings.database_url)
    store = AccountStore(settings.database_url)
    store.add("desk1", role="agent", password=PASSWORDS["desk1"])
    store.add("lead1", role="supervisor", password=PASSWORDS["lead1"])
    store.add("boss1", role="admin", password=PASSWORDS["boss1"])
    with serve_in_thread(settings) as (url, app):
        yield url, app, store


async def _login(http: httpx.AsyncClient, user: str) -> None:
    r = await http.post("/api/login", json={"username": user, "password": PASSWORDS[user]})
    assert r.status_code == 200, r.text


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


# --- 1, 2: the call API ---------------------------------------------------------------------------------------
async def test_call_token_guards_keys_and_hangup_and_records_need_a_supervisor(server, caplog):
    url, app, _ = server
    caplog.set_level(logging.INFO)
    client = WebRtcClient()
    answer = await client.call(url)
    cid, token = answer["call_id"], answer["call_token"]
    assert answer["type"] == "answer" and answer["sdp"] and len(token) >= 40  # an added field, shape kept
    try:
        await client.wait_for(lambda: len(client.voiced()) > 10, what="greeting")
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            r = await http.post(f"/api/calls/{cid}/dtmf", json={"digits": "1"})
            assert r.status_code == 401 and "X-Call-Token" in r.json()["error"]
            r = await http.post(f"/api/calls/{cid}/dtmf", json={"digits": "1"}, headers={"X-Call-Token": token[:-2]})
            assert r.status_code == 403
            assert (await http.delete(f"/api/calls/{cid}")).status_code == 401
            assert (await http.delete(f"/api/calls/{cid}", headers={"X-Call-Token": "x" * 43})).status_code == 403
            assert app.state.calls.sessions.get(cid) is not None  # none of that touched the call
            r = await http.post(f"/api/calls/{cid}/dtmf", json={"digits": "1"}, headers={"X-Call-Token": token})
            assert r.status_code == 204
            await client.wait_for(lambda: any("订单号" in x for x in client.bot_lines()), what="order number prompt")

            assert (await http.get(f"/api/calls/{cid}")).status_code == 401  # anonymous: no record
            r = await http.get(f"/api/calls/{cid}", headers={"X-Call-Token": token})
            assert r.status_code == 401  # the caller's token opens keys and hang-up, not the record
            await _login(http, "desk1")
            r = await http.get(f"/api/calls/{cid}")
            assert r.status_code == 403 and r.json()["role"] == "agent"
            await _login(http, "lead1")
            live = (await http.get(f"/api/calls/{cid}")).json()
            assert live["live"] is True and live["call_id"] == cid and "caller_key" not in live
            http.cookies.clear()
            r = await http.delete(f"/api/calls/{cid}", headers={"X-Call-Token": token})
            assert r.status_code == 204
            for _ in range(100):
                if app.state.calls.sessions.get(cid) is None:
                    break
                await asyncio.sleep(0.1)
            r = await http.get(f"/api/calls/{cid}", headers=record_headers(app.state.settings, "another-id"))
            assert r.status_code == 401  # a record token opens its own call only
            r = await http.get(f"/api/calls/{cid}", headers=record_headers(app.state.settings, cid))
            rec = r.json()
            assert r.status_code == 200 and rec["live"] is False and rec["ended_by"] == "caller"
            assert "caller_key" not in rec and [t["kind"] for t in rec["turns"]][:2] == ["start", "dtmf"]
            await _login(http, "boss1")
            assert (await http.get(f"/api/calls/{cid}")).json()["call_id"] == cid  # admins read records too
            for _ in range(100):
                if not len(app.state.call_tokens):
                    break
                await asyncio.sleep(0.1)
            assert len(app.state.call_tokens) == 0  # the ended call's token is gone
            assert (await http.delete(f"/api/calls/{cid}", headers={"X-Call-Token": token})).status_code == 403
    finally:
        await client.close()
    assert cid in caplog.text and token not in caplog.text  # the id is logged; the credential never


def test_served_records_have_no_caller_key_nor_a_whole_peer_address():
    body = {"call_id": "c1", "caller": "138****", "caller_key": "k" * 32,
            "extra": {"peer": "203.0.113.45:5062", "codec": "PCMA"}}
    out = public_record(body)
    assert "caller_key" not in out and out["extra"] == {"peer": "203.0.113.*", "codec": "PCMA"}
    assert mask_peer("[2001:db8:1:2::5]:5060") == "2001:db8:1:*" and mask_peer("pbx.example:5060") == "*"


# --- 3: API explorer and metrics --------------------------------------------------------------------------------
def test_docs_off_unless_configured_and_metrics_token(tmp_path):
    base = {"data_dir": str(tmp_path / "d")}
    c = TestClient(create_app(load_settings(base)))  # no lifespan (no calls): the routes only
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert c.get(path).status_code == 404, path
    assert c.get("/metrics").status_code == 200  # no token configured: open (documented)
    c = TestClient(create_app(load_settings({**base, "http_docs": True})))
    assert c.get("/openapi.json").status_code == 200 and c.get("/docs").status_code == 200
    c = TestClient(create_app(load_settings({**base, "metrics_token": "m-secret-123"})))
    r = c.get("/metrics")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = c.get("/metrics", headers={"Authorization": "Bearer m-secret-123"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")


# --- 4: body size --------------------------------------------------------------------------------------------
async def _raw_post(url: str, path: str, headers: str, body_mb: int) -> tuple[int, str, int]:
    """POST with a chunked body of ``body_mb`` MB from a generator (none if 0); (status, response head, bytes
    sent before the answer came)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{headers}\r\n".encode())
    sent = 0
    head = asyncio.create_task(reader.readuntil(b"\r\n\r\n"))
    chunk = b"x" * 65536
    with contextlib.suppress(ConnectionError):
        while sent < body_mb * 1024 * 1024 and not head.done():
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
            await writer.drain()
            await asyncio.sleep(0)  # like a real client, read an early answer while sending (drain may not yield)
    text = (await asyncio.wait_for(head, 30)).decode("latin-1")
    writer.close()
    return int(text.split()[1]), text.lower(), sent


async def test_oversized_bodies_get_413_before_they_are_read(server):
    url, app, _ = server
    limit = app.state.settings.http_max_body_bytes
    assert limit == 1024 * 1024  # the documented default
    rss0 = _rss_mb()
    status, head, _ = await _raw_post(url, "/api/login", "Content-Type: application/json\r\n"
                                      f"Content-Length: {limit + 1}\r\n", 0)
    assert status == 413 and "content-security-policy" in head  # refused at once, nothing sent
    status, _, _ = await _raw_post(url, "/api/calls/webrtc", "Content-Type: application/json\r\n"
                                   "Content-Length: 209715200\r\n", 0)
    assert status == 413
    status, _, sent = await _raw_post(url, "/api/calls/webrtc", "Content-Type: application/json\r\n"
                                      "Transfer-Encoding: chunked\r\n", 200)
    assert status == 413 and sent < 100 * 1024 * 1024, sent  # refused while streaming, long before 200 MB
    assert _rss_mb() - rss0 < 50, (rss0, _rss_mb())
    assert app.state.calls.active == 0
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        assert (await http.get("/health")).status_code == 200
        r = await http.post("/api/login", json={"username": "x" * (limit - 100), "password": "p"})
        assert r.status_code == 401  # just under the limit: read and answered


# --- 5: logins ---------------------------------------------------------------------------------------------
async def test_forty_parallel_logins_run_a_handful_of_hashes(server):
    url, _app, store = server
    store.add("target1", password="target-pass-1")
    throttle.STATS.update(checks=0, max_running=0, refused=0)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=50)) as http:
        rs = await asyncio.gather(*(http.post("/api/login", json={"username": "target1", "password": f"guess-{i}"})
                                    for i in range(40)))
    codes = [r.status_code for r in rs]
    assert throttle.STATS["checks"] <= 6, throttle.STATS
    assert throttle.STATS["max_running"] <= 2
    assert set(codes) <= {401, 429} and codes.count(429) >= 34, codes
    assert all(r.headers.get("retry-after", "").isdigit() for r in rs if r.status_code == 429)

    # made-up names: still one hash each (no enumeration by timing), but never more than the cap at once
    throttle.STATS.update(checks=0, max_running=0, refused=0)
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        r = await http.post("/api/login", json={"username": "nobody-here", "password": "whatever-1"})
        assert r.status_code == 401 and throttle.STATS["checks"] == 1
        rs = await asyncio.gather(*(http.post("/api/login", json={"username": f"ghost{i}", "password": "p-123456"})
                                    for i in range(30)))
    assert throttle.STATS["max_running"] <= 2 and throttle.STATS["refused"] > 0, throttle.STATS
    assert {r.status_code for r in rs} <= {401, 429}
    assert all(r.headers["retry-after"].isdigit() for r in rs if r.status_code == 429)


async def test_failures_from_one_address_are_throttled(tmp_path):
    settings = load_settings({"data_dir": str(tmp_path / "d"), "login_ip_max_failures": 3, "demo_data": False})
    ensure_schema(settings.database_url)
    AccountStore(settings.database_url).add("real1", password="real-pass-1")
    with serve_in_thread(settings) as (url, _app):
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            for i in range(3):
                r = await http.post("/api/login", json={"username": f"user{i}", "password": "wrong-pw"})
                assert r.status_code == 401
            r = await http.post("/api/login", json={"username": "real1", "password": "real-pass-1"})
            assert r.status_code == 429 and int(r.headers["retry-after"]) > 0 and "频繁" in r.json()["error"]


def test_throttle_memory_is_bounded():
    w = Windows(limit=5, window_s=300, max_keys=1000)
    for i in range(50000):
        w.begin(f"name{i}")
        w.end(f"name{i}", True)
    assert len(w) == 1000 and not w._pending
    for _ in range(5):
        w.begin("victim")
        w.end("victim", True)
    assert w.blocked_for("victim") > 0


# --- 6: the agent event stream ends with the login ------------------------------------------------------------
async def _open_stream(url: str, cookies: httpx.Cookies) -> tuple[asyncio.Task, list[str]]:
    lines: list[str] = []

    async def read() -> float:
        async with httpx.AsyncClient(base_url=url, cookies=cookies, timeout=30) as http:
            async with http.stream("GET", "/api/agent/events") as r:
                assert r.status_code == 200
                async for line in r.aiter_lines():
                    lines.append(line)
        return time.monotonic()

    task = asyncio.create_task(read())
    for _ in range(100):
        if lines:
            break
        await asyncio.sleep(0.05)
    assert lines and not task.done()
    return task, lines


@pytest.mark.parametrize("how", ["logout", "password", "deactivate"])
async def test_event_stream_closes_when_the_login_ends(server, how):
    url, app, store = server
    app.state.session_recheck_s = 0.5
    name = f"sse-{how}"
    store.add(name, role="agent", password="sse-pass-12")
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        assert (await http.post("/api/login", json={"username": name, "password": "sse-pass-12"})).status_code == 200
        task, lines = await _open_stream(url, http.cookies)
        await asyncio.sleep(1.2)
        assert not task.done()  # a valid login keeps its stream through re-checks
        t0 = time.monotonic()
        if how == "logout":
            assert (await http.post("/api/logout")).status_code == 204
        elif how == "password":
            await asyncio.to_thread(store.set_password, name, "sse-pass-new")
        else:
            await asyncio.to_thread(_deactivate, app.state.settings.database_url, name)
        closed_at = await asyncio.wait_for(task, 10)
        assert closed_at - t0 < 3.0
        assert any('"session_ended"' in x for x in lines), lines
        assert (await http.get("/api/agent/state")).status_code == 401


def _deactivate(url: str, username: str) -> None:
    from sqlalchemy import update

    from ivr.services.agents.tables import AgentRow
    from ivr.services.db import transaction

    with transaction(url) as s:
        s.execute(update(AgentRow).where(AgentRow.username == username).values(active=False))


async def test_logout_ends_a_copied_cookie(server):
    url, _app, _ = server
    async with httpx.AsyncClient(base_url=url, timeout=10) as a, httpx.AsyncClient(base_url=url, timeout=10) as b:
        await _login(a, "lead1")
        b.cookies.set("ivr_session", a.cookies["ivr_session"])
        assert (await b.get("/api/me")).status_code == 200
        assert (await a.post("/api/logout")).status_code == 204
        assert (await b.get("/api/me")).status_code == 401


# --- 7: CSRF --------------------------------------------------------------------------------------------------
async def test_cross_site_requests_are_refused(server):
    url, app, _ = server
    evil = {"Origin": "http://evil.example"}
    async with httpx.AsyncClient(base_url=url, timeout=10, follow_redirects=False) as http:
        await _login(http, "desk1")
        # the classic cross-site form: text/plain carrying JSON
        r = await http.post("/api/agent/presence", content=b'{"state": "available"}',
                            headers={**evil, "Content-Type": "text/plain"})
        assert r.status_code == 415
        r = await http.post("/api/login", content=b'{"username": "desk1", "password": "desk-pass-1"}',
                            headers={**evil, "Content-Type": "text/plain"})
        assert r.status_code == 415
        r = await http.post("/api/agent/presence", json={"state": "available"}, headers=evil)
        assert r.status_code == 403
        r = await http.post("/api/agent/presence", json={"state": "available"},
                            headers={"Referer": "http://evil.example/page"})
        assert r.status_code == 403
        r = await http.post("/api/agent/presence", json={"state": "available"}, headers={"Origin": "null"})
        assert r.status_code == 403
        assert (await http.get("/api/agent/state")).json()["agent"]["presence"] == "offline"  # nothing changed
        r = await http.post("/api/agent/presence", json={"state": "away"}, headers={"Origin": url})
        assert r.status_code == 200 and r.json()["presence"] == "away"
        r = await http.post("/login", data={"username": "lead1", "password": PASSWORDS["lead1"]}, headers=evil)
        assert r.status_code == 403  # login CSRF
        r = await http.post("/login", data={"username": "lead1", "password": PASSWORDS["lead1"]},
                            headers={"Origin": url})
        assert r.status_code == 303


# --- 8: headers -----------------------------------------------------------------------------------------------
async def test_security_headers_everywhere_and_hsts_only_over_tls(server, tmp_path):
    url, _app, _ = server
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        for path in ("/phone", "/login", "/health", "/static/phone.js", "/no-such-page", "/api/me"):
            h = (await http.get(path)).headers
            csp = h["content-security-policy"]
            assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
            assert h["x-content-type-options"] == "nosniff" and h["referrer-policy"] and h["x-frame-options"] == "DENY"
            assert "strict-transport-security" not in h, path
        h = (await http.get("/health", headers={"X-Forwarded-Proto": "https"})).headers
        assert "strict-transport-security" not in h  # nobody trusted says so
    settings = load_settings({"data_dir": str(tmp_path / "d"), "trusted_proxies": "127.0.0.1", "demo_data": False})
    ensure_schema(settings.database_url)
    AccountStore(settings.database_url).add("tls1", password="tls-pass-12")
    with serve_in_thread(settings) as (url2, _):
        async with httpx.AsyncClient(base_url=url2, timeout=10) as http:
            h = (await http.get("/health", headers={"X-Forwarded-Proto": "https"})).headers
            assert h["strict-transport-security"].startswith("max-age=")
            r = await http.post("/api/login", json={"username": "tls1", "password": "tls-pass-12"},
                                headers={"X-Forwarded-Proto": "https"})
            assert r.status_code == 200 and "secure" in r.headers["set-cookie"].lower()
            assert "strict-transport-security" not in (await http.get("/health")).headers
    c = TestClient(create_app(load_settings({"data_dir": str(tmp_path / "e"), "https_only": True})))
    assert "strict-transport-security" in c.get("/login").headers


# --- the pages under the CSP, in real Chromium ------------------------------------------------------------------
WATCH = """
window.__fetches = []; window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));
const orig = window.fetch;
window.fetch = async function (url, opts) {
  const rec = { url: String(url), method: (opts && opts.method) || "GET", headers: (opts && opts.headers) || {} };
  window.__fetches.push(rec);
  const r = await orig.apply(this, arguments);
  rec.status = r.status;
  if (rec.url.endsWith("/api/calls/webrtc")) rec.body = await r.clone().json().catch(() => null);
  return r;
};
"""


@pytest.mark.slow
async def test_pages_work_under_the_csp_and_the_softphone_sends_its_token(server, tmp_path):
    import numpy as np
    import soundfile as sf
    from browser.chromium import chromium_page, wait_js

    url, app, _ = server
    mic = tmp_path / "silence.wav"
    sf.write(mic, np.zeros(16000, dtype=np.int16), 16000)
    console: list[str] = []
    async with chromium_page(mic, tmp_path / "profile") as page:
        page.on("console", lambda m: console.append(m.text))
        await page.add_init_script(WATCH)
        await page.goto(f"{url}/phone")
        await page.click("#call")
        try:  # connected, then bot_speaking, listening ...: any state past dialing
            await wait_js(page, "window.ivrPhone.error || (window.ivrPhone.callId && window.ivrPhone.state !== 'dialing')")
        except TimeoutError:
            raise AssertionError(await page.evaluate("JSON.stringify(window.ivrPhone)")) from None
        assert await page.evaluate("window.ivrPhone.error") is None
        cid = await page.evaluate("window.ivrPhone.callId")
        token = (await page.evaluate("window.__fetches.find((f) => f.url.endsWith('/api/calls/webrtc')).body"))[
            "call_token"]
        anon = await page.evaluate("""(id) => fetch('/api/calls/' + id + '/dtmf', {method: 'POST',
            headers: {'Content-Type': 'application/json'}, body: '{"digits": "1"}'}).then((r) => r.status)""", cid)
        assert anon == 401  # same page, same origin, but without the call's token
        await page.click("#hangup")
        await wait_js(page, "window.__fetches.some((f) => f.method === 'DELETE' && f.status)", 10000)
        delete = await page.evaluate("window.__fetches.find((f) => f.method === 'DELETE')")
        assert delete["headers"]["X-Call-Token"] == token and delete["status"] != 401, delete
        assert await page.evaluate("window.__csp") == []

        await page.goto(f"{url}/login?next=/dashboard")
        await page.fill("input[name=username]", "lead1")
        await page.fill("input[name=password]", PASSWORDS["lead1"])
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{url}/dashboard")
        await wait_js(page, "window.ivrDashboard && window.ivrDashboard.ready")
        assert await page.evaluate("window.ivrDashboard.error || ''") == ""
        assert await page.evaluate("window.__csp") == []
        await page.click("button.link")  # 退出 (a same-origin form POST)
        await page.wait_for_url(f"{url}/login")
    for _ in range(50):
        if cid not in app.state.calls.sessions:
            break
        await asyncio.sleep(0.1)
    assert not [m for m in console if "Content Security Policy" in m], console
