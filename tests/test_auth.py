"""Accounts and logins: `ivr agents`, hashed passwords, signed cookies, roles, lock-out, password change."""

from __future__ import annotations

import os
import stat

import httpx
import pytest
from browser.server import serve_in_thread

from ivr.cli import main
from ivr.config import load_settings
from ivr.services.agents import AccountError, AccountStore
from ivr.services.migrate import ensure_schema

pytestmark = pytest.mark.timeout(180)


def _with_pw(monkeypatch, password: str, argv: list[str]) -> int:
    """`ivr ARGV` with the password as one line on standard input (never on the command line)."""
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    return main(argv)


def test_agents_cli_add_list_passwd(tmp_path, capsys, monkeypatch):
    db = f"sqlite:///{tmp_path / 'a.db'}"
    assert _with_pw(monkeypatch, "s3cret-pass", ["agents", "add", "li.na", "--role", "supervisor", "--skills",
                 "orders,vip", "--db", db]) == 0
    assert _with_pw(monkeypatch, "another-pass", ["agents", "add", "li.na", "--db", db]) == 2  # name taken
    assert _with_pw(monkeypatch, "short", ["agents", "add", "x", "--db", db]) == 2
    with pytest.raises(SystemExit):  # argparse refuses an unknown role with a usage line
        _with_pw(monkeypatch, "long-enough", ["agents", "add", "wang", "--role", "boss", "--db", db])
    capsys.readouterr()
    assert main(["agents", "list", "--json", "--db", db]) == 0
    out = capsys.readouterr().out
    assert '"username": "li.na"' in out and '"role": "supervisor"' in out and '"vip"' in out
    assert "s3cret" not in out
    store = AccountStore(db)
    assert store.authenticate("li.na", "s3cret-pass") is not None
    assert _with_pw(monkeypatch, "brand-new-pass", ["agents", "passwd", "li.na", "--db", db]) == 0
    assert store.authenticate("li.na", "s3cret-pass") is None
    assert store.authenticate("li.na", "brand-new-pass") is not None
    assert _with_pw(monkeypatch, "whatever123", ["agents", "passwd", "nobody", "--db", db]) == 2
    assert main(["agents", "phone", "li.na", "sip:1001@127.0.0.1:5070", "--db", db]) == 0
    assert store.by_name("li.na").sip_uri == "sip:1001@127.0.0.1:5070"
    assert main(["agents", "phone", "li.na", "not a uri", "--db", db]) == 2
    assert main(["agents", "phone", "li.na", "--db", db]) == 0  # cleared: browser audio again
    assert store.by_name("li.na").sip_uri == ""


def test_passwords_are_hashed_not_stored(tmp_path):
    db = f"sqlite:///{tmp_path / 'a.db'}"
    ensure_schema(db)
    AccountStore(db).add("zhang", password="plain-text-pw")
    raw = b"".join(f.read_bytes() for f in tmp_path.glob("a.db*"))  # the file and its WAL
    assert b"plain-text-pw" not in raw and b"$argon2" in raw
    with pytest.raises(AccountError):
        AccountStore(db).add("zhang", password="plain-text-pw")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("auth")
    settings = load_settings({"data_dir": str(data)})
    ensure_schema(settings.database_url)
    store = AccountStore(settings.database_url)
    store.add("agent1", role="agent", password="agent-pass-1")
    store.add("sup1", role="supervisor", password="sup-pass-11")
    with serve_in_thread(settings) as (url, app):
        yield url, app, store, data


def test_login_cookie_and_me(server):
    url, _app, _store, data = server
    with httpx.Client(base_url=url) as c:
        assert c.get("/api/me").status_code == 401
        r = c.post("/api/login", json={"username": "agent1", "password": "wrong-password"})
        assert r.status_code == 401 and "不正确" in r.json()["error"]
        r = c.post("/api/login", json={"username": "agent1", "password": "agent-pass-1"})
        assert r.status_code == 200 and r.json()["role"] == "agent"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert c.get("/api/me").json()["username"] == "agent1"
        assert c.post("/api/logout").status_code == 204
        assert c.get("/api/me").status_code == 401
    secret = data / "secret_key"  # no secret_key configured: a random one, readable only by the service user
    assert secret.is_file() and stat.S_IMODE(os.stat(secret).st_mode) == 0o600


def test_tampered_cookie_is_anonymous(server):
    url, *_ = server
    with httpx.Client(base_url=url) as c:
        c.post("/api/login", json={"username": "agent1", "password": "agent-pass-1"})
        token = c.cookies["ivr_session"]
        c.cookies.set("ivr_session", token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"))
        assert c.get("/api/me").status_code == 401


def test_login_form_redirects_only_inside_the_site(server):
    url, *_ = server
    with httpx.Client(base_url=url, follow_redirects=False) as c:
        page = c.get("/login?next=/dashboard")
        assert page.status_code == 200 and 'value="/dashboard"' in page.text
        r = c.post("/login", data={"username": "sup1", "password": "sup-pass-11", "next": "//evil.example/x"})
        assert r.status_code == 303 and r.headers["location"] == "/dashboard"  # supervisor's home, not evil
        r = c.post("/login", data={"username": "sup1", "password": "nope-nope", "next": "/agent"})
        assert r.status_code == 401 and "不正确" in r.text


def test_password_change_ends_existing_logins(server):
    url, _app, store, _ = server
    store.add("temp1", password="first-password")
    with httpx.Client(base_url=url) as c:
        assert c.post("/api/login", json={"username": "temp1", "password": "first-password"}).status_code == 200
        assert c.get("/api/me").status_code == 200
        store.set_password("temp1", "second-password")
        assert c.get("/api/me").status_code == 401


def test_repeated_wrong_passwords_lock_the_name(server):
    url, _app, store, _ = server
    store.add("victim", password="right-password")
    with httpx.Client(base_url=url) as c:
        for _ in range(5):
            assert c.post("/api/login", json={"username": "victim", "password": "guess"}).status_code == 401
        r = c.post("/api/login", json={"username": "victim", "password": "right-password"})
        assert r.status_code == 429 and "过多" in r.json()["error"] and int(r.headers["retry-after"]) > 0
        # another name is not affected
        assert c.post("/api/login", json={"username": "agent1", "password": "agent-pass-1"}).status_code == 200
