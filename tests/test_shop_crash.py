"""Kill -9 in the middle of a return write, then repeat the request: never a second RMA, never a partial one.

A real child process runs SqlShop.create_return against a real database (SQLite file / PostgreSQL) and pauses at
a named step inside its open transaction (IVR_SHOP_PAUSE_AT, the store's fault-injection hook); the test then
SIGKILLs it, as a crash or an OOM kill would, and repeats the request the way a caller calling back would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select
from test_shop_helpers import db_url, pg_server, shop_today  # noqa: F401  (fixtures)

from ivr.services.db import session_factory
from ivr.services.shop import NotAllowed, SqlShop, seed_demo
from ivr.services.shop.models import AuditLog, IdempotencyKey, ReturnRow
from ivr.services.shop.store import PAUSE_ENV

ORDER = "100000000002"  # delivered 3 days ago: returnable
CHILD = """
import sys
from ivr.services.shop import SqlShop
rma = SqlShop(sys.argv[1]).create_return(sys.argv[2], "return", "size:尺码不合适", "明天上午", sys.argv[3])
print(rma.rma_id, flush=True)
"""


def rows(url: str) -> tuple[int, int, int]:
    with session_factory(url)() as s:
        n = lambda model, *w: s.scalar(select(func.count()).select_from(model).where(*w))  # noqa: E731
        return (n(ReturnRow, ReturnRow.order_id == ORDER), n(IdempotencyKey, IdempotencyKey.key == "call-7:return"),
                n(AuditLog, AuditLog.order_id == ORDER))


def run_and_kill(url: str, step: str, marker) -> None:
    env = {**os.environ, PAUSE_ENV: step, "IVR_SHOP_PAUSE_FILE": str(marker), "IVR_SHOP_PAUSE_S": "120"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, ORDER, "call-7:return"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (marker.exists() and marker.read_text()):  # created, then written: wait for the step's name
            if child.poll() is not None:
                pytest.fail(f"child ended before reaching {step}: {child.stderr.read()[-800:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"child never reached {step}")
            time.sleep(0.02)
        assert marker.read_text() == step
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize("step", ["create_return.key_claimed", "create_return.rma_inserted",
                                  "create_return.audited", "create_return.before_commit"])
def test_killed_before_commit_leaves_nothing_and_a_retry_makes_one_rma(db_url, step, tmp_path):  # noqa: F811
    seed_demo(db_url, today=shop_today(), customers=20, orders=40)
    run_and_kill(db_url, step, tmp_path / "paused")
    assert rows(db_url) == (0, 0, 0), "a killed write left a partial return behind"
    shop = SqlShop(db_url)
    rma = shop.create_return(ORDER, "return", "size:尺码不合适", "明天上午", "call-7:return")
    assert shop.create_return(ORDER, "return", "size:尺码不合适", "明天上午", "call-7:return") == rma
    assert rows(db_url) == (1, 1, 1)
    with pytest.raises(NotAllowed) as e:  # a later call with a fresh key is told about the existing RMA
        shop.create_return(ORDER, "return", "size:尺码不合适", "明天上午", "call-8:return")
    assert e.value.code == "return_exists"
    assert rows(db_url)[0] == 1


def test_killed_after_commit_the_retry_returns_the_same_rma(db_url, tmp_path):  # noqa: F811
    seed_demo(db_url, today=shop_today(), customers=20, orders=40)
    run_and_kill(db_url, "create_return.committed", tmp_path / "paused")
    assert rows(db_url) == (1, 1, 1)  # the write completed; only the answer was lost
    shop = SqlShop(db_url)
    first = shop.get_order(ORDER).returns[0]
    assert shop.create_return(ORDER, "return", "size:尺码不合适", "明天上午", "call-7:return") == first
    assert rows(db_url) == (1, 1, 1)
