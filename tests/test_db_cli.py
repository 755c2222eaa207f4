"""`ivr db init | seed | orders | show` as a tester uses them: real processes, real database file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import get_args

from ivr.cli import db_cmd
from ivr.services.shop.api import OrderStatus
from ivr.services.shop.seed import FIXED_ORDERS


def ivr(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ivr", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_init_seed_and_list_orders_as_json_lines(tmp_path):
    r = ivr("db", "init")
    assert r.returncode == 0 and "schema revision" in r.stdout, r.stderr
    assert (tmp_path / "data" / "ivr.db").exists()  # settings' data_dir (IVR_DATA_DIR from conftest)
    r = ivr("db", "seed", "--seed", "11")
    assert r.returncode == 0 and "1200 orders" in r.stdout, r.stderr
    r = ivr("db", "orders", "--json", "--limit", "0")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 1200 and set(FIXED_ORDERS) <= {x["order_id"] for x in rows}
    assert all({"order_id", "phone", "status", "customer_phone", "phone_tail"} <= set(x) for x in rows)
    assert all(x["phone_tail"] == x["phone"][-4:] for x in rows)
    late = next(x for x in rows if x["order_id"] == "100000000001")
    assert late["phone"] == "13800138000" and late["status"] == "in_transit" and "late" in late["fixed"]
    r = ivr("db", "orders", "--json", "--status", "delivered", "--limit", "5")
    sel = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(sel) == 5 and {x["status"] for x in sel} == {"delivered"}
    r = ivr("db", "orders", "--phone", "139 1234 5678", "--limit", "0")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 6 and "100000000007" in r.stdout
    r = ivr("db", "show", "100000000007")
    assert json.loads(r.stdout)["extra"]["can_return"] is True


def test_seed_refuses_to_wipe_without_replace_and_reseeds_with_it():
    assert ivr("db", "seed").returncode == 0
    r = ivr("db", "seed", "--seed", "2")
    assert r.returncode == 2 and "--replace" in r.stderr and r.stderr.count("\n") == 1
    r = ivr("db", "seed", "--seed", "2", "--replace", "--today", "2025-01-31")
    assert r.returncode == 0


def test_reading_never_creates_a_database_and_demo_data_comes_only_when_asked(tmp_path):
    typo = tmp_path / "shpo.db"
    for args in (["db", "orders"], ["db", "show", "100000000007"], ["agents", "list"], ["records", "stats"]):
        r = ivr(*args, "--db", f"sqlite:///{typo}")
        assert r.returncode == 2 and f"no database at {typo}" in r.stderr and "ivr db init" in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1 and not typo.exists()
    r = ivr("db", "orders", "--json", "--limit", "3")
    assert r.returncode == 2 and "no database" in r.stderr and not (tmp_path / "data" / "ivr.db").exists()
    plain = ivr("db", "init", env={"IVR_DEMO_DATA": "0"})
    assert plain.returncode == 0 and "seeded" not in plain.stdout
    r = ivr("db", "orders", "--json")
    assert r.returncode == 0 and r.stdout == ""  # an empty shop: no demo orders slipped in
    r = ivr("db", "init", "--demo")
    assert r.returncode == 0 and "seeded the demo shop" in r.stdout and "1200 orders" in r.stdout, r.stdout
    r = ivr("db", "orders", "--json", "--limit", "3")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 3
    assert "orders already" in ivr("db", "init", "--demo").stdout  # never a second helping


def test_user_errors_are_one_line_without_traceback():
    for args in (["db", "seed", "--today", "2025-02-30"], ["db", "show", "42"], ["db", "orders", "--limit", "-1"],
                 ["db", "init", "--db", "postgresql+psycopg://u:pw@127.0.0.1:9/none"]):
        r = ivr(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
        assert "pw@" not in r.stderr  # passwords never printed
    r = ivr("db", "orders", "--status", "lost")
    assert r.returncode == 2 and "invalid choice" in r.stderr
    assert db_cmd.STATUSES == list(get_args(OrderStatus))  # --status offers exactly the shop's states
