"""One Alembic history for the whole project: a single head, models equal to migrations, safe concurrent starts,
and migrations that run from the installed package (a built wheel), not only from the source tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from ivr.services import migrate

ROOT = Path(__file__).resolve().parent.parent


def test_history_has_a_single_head():
    heads = migrate.script_directory().get_heads()
    assert len(heads) == 1, f"migration history has several heads {heads}: chain new revisions after the head"


def test_head_read_from_the_files_is_alembics():
    assert migrate.head_from_files() == migrate.head_revision()


def test_a_current_schema_is_checked_without_loading_alembic(tmp_path):
    """Every `ivr` command and each service start checks the schema: when it is current, Alembic (~0.3 CPU-s to
    import) is not loaded; an old schema is still upgraded."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    probe = ("import sys; from ivr.services.migrate import ensure_schema; print(ensure_schema(sys.argv[1]), "
             "'alembic' in sys.modules)")
    first = subprocess.run([sys.executable, "-c", probe, url], capture_output=True, text=True, check=True)
    head = migrate.head_revision()
    assert first.stdout.split() == [head, "True"]  # created: Alembic ran the upgrade
    again = subprocess.run([sys.executable, "-c", probe, url], capture_output=True, text=True, check=True)
    assert again.stdout.split() == [head, "False"]
    eng = create_engine(url)
    with eng.begin() as conn:  # an older schema's mark: upgraded again through Alembic
        conn.execute(text("UPDATE alembic_version SET version_num = '0007'"))
        for table in ("restock_subscriptions", "product_stock", "coupons"):  # what 0008 adds
            conn.execute(text(f"DROP TABLE {table}"))
    eng.dispose()
    old = subprocess.run([sys.executable, "-c", probe, url], capture_output=True, text=True, check=True)
    assert old.stdout.split() == [head, "True"]
    assert "coupons" in inspect(create_engine(url)).get_table_names()


def schema_diff(url: str) -> list:
    eng = create_engine(url)
    try:
        with eng.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(ctx, migrate.load_models())
    finally:
        eng.dispose()


def test_models_match_migrations(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    assert migrate.ensure_schema(url) == migrate.head_revision()
    diff = schema_diff(url)
    assert diff == [], f"models and migrations differ, add a revision (see docs/oms.md): {diff}"


def test_shop_tables_exist_after_ensure_schema(tmp_path):
    url = f"sqlite:///{tmp_path / 'x' / 'shop.db'}"  # parent directory does not exist yet
    migrate.ensure_schema(url)
    tables = set(inspect(create_engine(url)).get_table_names())
    assert {"customers", "orders", "order_items", "payments", "shipments", "tracking_events", "returns", "refunds",
            "invoices", "tickets", "promotions", "price_changes", "idempotency_keys", "audit_log",
            "alembic_version"} <= tables


CONCURRENT_START = """
import sys
from ivr.services.migrate import ensure_schema
print(ensure_schema(sys.argv[1]))
"""


def run_concurrent_starts(url: str, n: int = 4) -> list[str]:
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_START, url], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, f"a concurrent start failed: {err[-800:]}"
        outs.append(out.strip())
    return outs


def test_concurrent_starts_on_a_fresh_sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'race.db'}"
    assert set(run_concurrent_starts(url)) == {migrate.head_revision()}
    with create_engine(url).connect() as c:
        assert c.execute(text("select version_num from alembic_version")).scalars().all() == [migrate.head_revision()]
    assert schema_diff(url) == []


def test_ensure_schema_twice_is_a_no_op(tmp_path):
    url = f"sqlite:///{tmp_path / 'twice.db'}"
    migrate.ensure_schema(url)
    migrate.forget(url)
    migrate.ensure_schema(url)  # a second start: reads the revision, changes nothing
    assert migrate.current_revisions(url) == (migrate.head_revision(),)


def test_database_from_newer_code_gives_a_clear_error(tmp_path):
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    migrate.ensure_schema(url)
    with create_engine(url).begin() as c:
        c.execute(text("update alembic_version set version_num = '9999_future'"))
    migrate.forget(url)
    with pytest.raises(migrate.SchemaError, match="9999_future"):
        migrate.ensure_schema(url)


def test_migrations_run_from_a_built_wheel(tmp_path):
    """Build the wheel, unpack it (that is what an install does) and migrate from there, outside the repo."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "ivr", src / "ivr", ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, src / f)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                        str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-1500:]
    wheel = next((tmp_path / "dist").glob("ivr-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("ivr/services/migrations/env.py", "ivr/services/migrations/alembic.ini",
                   "ivr/services/migrations/script.py.mako", "ivr/services/migrations/versions/0001_shop_tables.py",
                   "ivr/services/shop/demo_catalog.yaml"):
        assert needed in names, f"{needed} missing from the wheel"
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    db = tmp_path / "installed.db"
    code = ("import sys; from ivr.services.migrate import ensure_schema, MIGRATIONS_DIR; "
            "from ivr.services.shop import seed_demo; print(MIGRATIONS_DIR); "
            "print(seed_demo(sys.argv[1], customers=10, orders=30)['orders'])")
    env = {**os.environ, "PYTHONPATH": str(site)}
    r = subprocess.run([sys.executable, "-c", code, f"sqlite:///{db}"], capture_output=True, text=True,
                       cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-1500:]
    where, orders = r.stdout.split()
    assert where.startswith(str(site)) and int(orders) == 30
