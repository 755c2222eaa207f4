"""CLI conventions and account management: --version, no passwords on the command line, disable/enable/role/
skills (a disabled account cannot log in), `ivr serve` seeds no demo data unless asked, quiet start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from browser.server import serve_in_thread

from ivr.bench.ports import reserve_port
from ivr.config import load_settings
from ivr.services.agents import AccountStore
from tests.conftest import wait_healthy


def ivr(*args: str, stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ivr", *args], input=stdin, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


HEAVY = {"numpy", "sqlalchemy", "fastapi", "pydantic"}


def _imports(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """`ivr ARGS` under ``python -X importtime``: the process and the top-level packages it imported."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "ivr", *args], capture_output=True, text=True,
                       timeout=120)
    return r, {line.split("|")[-1].strip().split(".")[0] for line in r.stderr.splitlines()
               if line.startswith("import time:")}


def test_version():
    r, imported = _imports("--version")
    assert r.returncode == 0 and r.stdout.strip().startswith("ivr ") and r.stdout.strip()[4:5].isdigit()
    assert "ivr" in imported and not imported & HEAVY, imported & HEAVY  # a quick start: nothing heavy imported
    r, imported = _imports("--help")
    assert r.returncode == 0 and all(f"    {group} " in r.stdout for group in ("serve", "db", "say", "bench", "backup"))
    assert not imported & HEAVY, imported & HEAVY
    from ivr.audio.frames import SUPPORTED_RATES
    from ivr.cli.say_cmd import HELP_RATES

    assert HELP_RATES == SUPPORTED_RATES  # `ivr say --help` lists the rates without importing numpy


def test_password_on_the_command_line_is_refused_with_how_to(tmp_path):
    db = f"sqlite:///{tmp_path / 'a.db'}"
    r = ivr("agents", "add", "li.na", "--password", "s3cret-pass", "--db", db)
    assert r.returncode == 2 and "--password is no longer accepted" in r.stderr
    assert "printf" in r.stderr and "ivr agents add li.na" in r.stderr and r.stderr.count("\n") == 1
    assert "--password" not in ivr("agents", "add", "--help").stdout  # not offered any more
    assert ivr("agents", "add", "li.na", "--db", db, stdin="s3cret-pass\n").returncode == 0
    assert ivr("agents", "add", "wang", "--db", db, stdin="").returncode == 2  # empty stdin: no password


def test_disable_enable_role_skills_and_a_disabled_account_cannot_log_in(tmp_path):
    settings = load_settings({"data_dir": str(tmp_path / "data"), "demo_data": False})  # accounts only: no shop
    db = settings.database_url
    assert ivr("agents", "add", "li.na", "--skills", "orders", "--db", db, stdin="s3cret-pass\n").returncode == 0
    with serve_in_thread(settings) as (url, _app):
        client = httpx.Client(base_url=url, timeout=30)
        assert client.post("/api/login", json={"username": "li.na", "password": "s3cret-pass"}).status_code == 200
        assert client.get("/api/agent/state").status_code == 200
        r = ivr("agents", "disable", "li.na", "--db", db)
        assert r.returncode == 0 and "disabled" in r.stdout
        login = httpx.post(url + "/api/login", json={"username": "li.na", "password": "s3cret-pass"}, timeout=30)
        assert login.status_code == 401
        assert client.get("/api/agent/state").status_code == 401  # the open login ended too
        assert ivr("agents", "enable", "li.na", "--db", db).returncode == 0
        login = httpx.post(url + "/api/login", json={"username": "li.na", "password": "s3cret-pass"}, timeout=30)
        assert login.status_code == 200
    r = ivr("agents", "role", "li.na", "supervisor", "--db", db)
    assert r.returncode == 0 and "supervisor" in r.stdout
    r = ivr("agents", "skills", "li.na", "orders,vip", "--db", db)
    assert r.returncode == 0 and "orders,vip" in r.stdout
    acc = AccountStore(db).by_name("li.na")
    assert (acc.role, acc.skills, acc.active) == ("supervisor", ("orders", "vip"), True)
    assert "unknown skill 'cooking'" in ivr("agents", "skills", "li.na", "cooking", "--db", db).stderr
    assert "no account named 'nobody'" in ivr("agents", "disable", "nobody", "--db", db).stderr


def test_serve_without_demo_has_an_empty_shop_and_a_quiet_start(tmp_path):
    port = reserve_port()
    data = tmp_path / "fresh"
    env = {**os.environ, "IVR_DATA_DIR": str(data), "IVR_DEMO_DATA": "0"}
    err = tmp_path / "err.txt"
    with err.open("w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "ivr", "serve", "--port", str(port), "--sip-port", "0"],
                                stdout=subprocess.DEVNULL, stderr=f, env=env)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, err.read_text)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    log = err.read_text()
    assert "alembic" not in log, log
    r = ivr("db", "orders", "--json", "--db", f"sqlite:///{Path(data) / 'ivr.db'}")
    assert r.returncode == 0 and r.stdout == ""
