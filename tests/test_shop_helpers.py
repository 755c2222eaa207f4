"""Fixtures shared by the shop/db tests: a throwaway PostgreSQL cluster and per-test databases on SQLite and
PostgreSQL. (No tests here; other test modules import these fixtures.)

The PostgreSQL cluster is real (Debian's postgresql, initdb in a temp dir, run as the postgres user when we
are root). If it cannot start, every PostgreSQL test FAILS with the reason: CI installs postgresql via ./run.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from ivr.bench.ports import reserve_port

SHANGHAI = ZoneInfo("Asia/Shanghai")


def free_port() -> int:
    """A loopback port held for this test process (no race with parallel workers)."""
    return reserve_port()


def _pg_bin() -> str:
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not dirs or not os.path.exists(os.path.join(dirs[-1], "initdb")):
        pytest.fail("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); `./run test` installs it")
    return dirs[-1]


@pytest.fixture(scope="session")
def pg_server():
    """Base URL (no database) of a throwaway PostgreSQL cluster on a free TCP port."""
    bindir = _pg_bin()
    root = tempfile.mkdtemp(prefix="ivr-pg-")
    as_root = os.geteuid() == 0
    if as_root:
        shutil.chown(root, "postgres", "postgres")

    def run(*cmd: str) -> subprocess.CompletedProcess:
        full = (["runuser", "-u", "postgres", "--"] if as_root else []) + list(cmd)
        return subprocess.run(full, capture_output=True, text=True, timeout=180)

    data, port = os.path.join(root, "data"), free_port()
    r = run(f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C")
    if r.returncode != 0:
        pytest.fail(f"PostgreSQL initdb failed (rc {r.returncode}): {r.stderr.strip() or r.stdout.strip()}")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
    r = run(f"{bindir}/pg_ctl", "-D", data, "-l", os.path.join(root, "log"), "-w", "-t", "60", "-o", opts, "start")
    if r.returncode != 0:
        log = open(os.path.join(root, "log"), encoding="utf-8", errors="replace").read()[-2000:] \
            if os.path.exists(os.path.join(root, "log")) else ""
        pytest.fail(f"PostgreSQL cluster did not start: {r.stderr.strip()} {log}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        run(f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def new_pg_database(server: str) -> str:
    """A fresh empty database on the cluster; returns its SQLAlchemy URL."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """An empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shop.db'}"
    return new_pg_database(request.getfixturevalue("pg_server"))


def shop_today() -> date:
    return datetime.now(SHANGHAI).date()


def noon(today: date):
    """A clock fixed at noon of `today` (shop time): tests never depend on the wall clock crossing midnight."""
    t = datetime.combine(today, time(12, 0), SHANGHAI)
    return lambda: t
