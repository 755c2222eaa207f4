"""`ivr backup` of a running `ivr serve`, `ivr restore` into a new data dir, `ivr serve` there: all back."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

import httpx
from test_shop_helpers import pg_server  # noqa: F401  (fixture)

from ivr.bench.ports import reserve_port
from ivr.cli import main
from tests.conftest import wait_healthy


def _ivr(*args: str, data: Path, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "IVR_DATA_DIR": str(data), "IVR_DEMO_DATA": "0"}
    return subprocess.run([sys.executable, "-m", "ivr", *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=180)


def _free_port() -> int:
    return reserve_port()  # held for this test process: no race with parallel workers


@contextmanager
def _serving(data: Path, *extra: str):
    port = _free_port()
    env = {**os.environ, "IVR_DATA_DIR": str(data), "IVR_DEMO_DATA": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "ivr", "serve", "--port", str(port), "--sip-port", "0", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, proc.stderr.read)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _read(*args: str, data: Path) -> str:
    """What the reading command `ivr ARGS --db <data's database>` prints, run in this process: the same code as the
    command line, without a fresh interpreter and its imports each time (~0.8 CPU-s, four reads per test)."""
    out = io.StringIO()
    with redirect_stdout(out):
        assert main([*args, "--db", f"sqlite:///{data / 'ivr.db'}"]) == 0
    return out.getvalue()


def _orders(data: Path) -> list[dict]:
    return [json.loads(line) for line in _read("db", "orders", "--json", "--limit", "0", data=data).splitlines()]


def _records(data: Path) -> str:
    return _read("records", "export", "--csv", "--period", "all", data=data)


def _login(url: str, user: str, password: str) -> int:
    return httpx.post(url + "/api/login", json={"username": user, "password": password}, timeout=30).status_code


def _web_chat(url: str, *texts: str) -> None:
    """A customer's conversation on the running service's web chat, left at the end: one call record (written by
    the service while it runs; an `ivr chat` process beside it would load a second NLU for the same)."""
    with httpx.Client(base_url=url, timeout=30) as c:
        r = c.post("/api/chat/sessions", json={})
        assert r.status_code == 201, r.text
        sid, headers = r.json()["session_id"], {"X-Chat-Token": r.json()["chat_token"]}
        for text in texts:
            r = c.post(f"/api/chat/sessions/{sid}/messages", json={"text": text}, headers=headers)
            assert r.status_code == 200, r.text
        assert c.delete(f"/api/chat/sessions/{sid}", headers=headers).status_code == 204


def test_backup_of_a_running_service_restores_orders_records_and_logins(tmp_path):
    a, b, saved = tmp_path / "a", tmp_path / "b", tmp_path / "backup"
    with _serving(a, "--demo") as url:
        assert _ivr("agents", "add", "alice", "--role", "agent", data=a, stdin="s3cret-alice\n").returncode == 0
        assert _login(url, "alice", "s3cret-alice") == 200
        _web_chat(url, "你们保修多久", "再见")
        (a / "custom").mkdir()
        (a / "custom" / "shop.yaml").write_text("name: 张记百货\n", encoding="utf-8")
        r = _ivr("backup", str(saved), data=a)
        assert r.returncode == 0, r.stderr
        assert "orders" in r.stdout and "1 call records" in r.stdout
        orders, records = _orders(a), _records(a)
    assert len(orders) >= 1000 and records.count("\n") >= 2  # header + the web chat
    assert not b.exists()
    r = _ivr("restore", str(saved), data=b)
    assert r.returncode == 0, r.stderr
    assert (b / "secret_key").read_text() == (a / "secret_key").read_text()
    assert (b / "custom" / "shop.yaml").read_text(encoding="utf-8") == "name: 张记百货\n"
    with _serving(b) as url:
        assert _login(url, "alice", "s3cret-alice") == 200
        assert _login(url, "alice", "wrong") == 401
        assert _orders(b) == orders
        assert _records(b) == records
    again = _ivr("restore", str(saved), data=b)
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr


def test_restore_refuses_a_damaged_backup(tmp_path):
    a, saved = tmp_path / "a", tmp_path / "backup"
    assert _ivr("db", "init", data=a).returncode == 0
    assert _ivr("backup", str(saved), data=a).returncode == 0
    with (saved / "ivr.db").open("r+b") as f:
        f.seek(200)
        f.write(b"\xff\xff")
    r = _ivr("restore", str(saved), data=tmp_path / "b")
    assert r.returncode == 2 and "damaged: ivr.db" in r.stderr
    assert not (tmp_path / "b" / "ivr.db").exists()
    r = _ivr("backup", str(saved), data=a)
    assert r.returncode == 2 and "not an empty folder" in r.stderr


def test_postgresql_backup_with_pg_dump_restores_into_a_new_database(tmp_path, pg_server):  # noqa: F811
    from test_shop_helpers import new_pg_database

    from ivr.config import Settings
    from ivr.services.agents import AccountStore
    from ivr.services.backup import backup, restore
    from ivr.services.migrate import ensure_schema
    from ivr.services.shop import SqlShop, seed_demo

    src = Settings(data_dir=tmp_path / "a", db_url=new_pg_database(pg_server))
    ensure_schema(src.database_url)
    seed_demo(src.database_url, seed=3)
    AccountStore(src.database_url).add("alice", password="s3cret-alice")
    manifest = backup(src, tmp_path / "saved")
    assert manifest["database"] == "postgresql" and (tmp_path / "saved" / "db.pgdump").is_file()
    assert "s3cret" not in (tmp_path / "saved" / "db.pgdump").read_bytes().decode("latin-1")  # hashes only
    dst = Settings(data_dir=tmp_path / "b", db_url=new_pg_database(pg_server))
    restore(dst, tmp_path / "saved")
    assert SqlShop(dst.database_url).count_orders() == SqlShop(src.database_url).count_orders() >= 1000
    assert AccountStore(dst.database_url).authenticate("alice", "s3cret-alice") is not None
