"""The same schema code on a real, throwaway PostgreSQL cluster: migrations (also started concurrently), models
equal to migrations, (concurrent first starts seeding once: test_shop_seed). The store, idempotency and crash tests run
on PostgreSQL too (their `db_url` fixture is parametrised over SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import create_engine, text
from test_db_migrations import run_concurrent_starts, schema_diff
from test_shop_helpers import new_pg_database, pg_server  # noqa: F401  (fixture)

from ivr.services import migrate


def test_migrations_on_postgresql_match_the_models(pg_server):  # noqa: F811
    url = new_pg_database(pg_server)
    assert migrate.ensure_schema(url) == migrate.head_revision()
    assert schema_diff(url) == []
    with create_engine(url).connect() as c:
        assert c.execute(text("select version_num from alembic_version")).scalar_one() == migrate.head_revision()


def test_concurrent_starts_on_postgresql(pg_server):  # noqa: F811
    url = new_pg_database(pg_server)
    assert set(run_concurrent_starts(url, n=4)) == {migrate.head_revision()}
    assert schema_diff(url) == []
