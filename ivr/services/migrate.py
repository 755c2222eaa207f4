"""Schema migrations: one Alembic history for every table of the project, shipped inside the package.

``ensure_schema(url)`` upgrades any database to head. It is cheap when the schema is current (one read,
then cached per process), and safe when several processes start at once: the upgrade runs in one
transaction under a lock (SQLite ``BEGIN IMMEDIATE`` with transactional DDL; PostgreSQL an advisory
transaction lock), so the second process waits, then finds the schema at head and does nothing.

Table modules are found by name: every module under ``ivr.services`` named ``models``/``tables`` or ending
in ``_models``/``_tables`` is imported by ``load_models()`` (and by Alembic's env.py).
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, create_engine, event, text
from sqlalchemy.pool import NullPool

from ivr.services.db import Base

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_KEY = 0x1F0E_5C4E  # arbitrary, constant: "ivr schema" advisory lock

_ensured: set[str] = set()
_lock = threading.Lock()


class SchemaError(RuntimeError):
    """The database cannot be brought to the schema this code expects (one line for the operator)."""


def load_models() -> MetaData:
    """Import every table module under ivr.services so ``Base.metadata`` knows all tables."""
    import ivr.services as services

    for info in pkgutil.walk_packages(services.__path__, "ivr.services."):
        leaf = info.name.rsplit(".", 1)[-1]
        if leaf in ("models", "tables") or leaf.endswith(("_models", "_tables")):
            importlib.import_module(info.name)
    return Base.metadata


def alembic_config(url: str, connection: Connection | None = None) -> Config:
    """The project's Alembic config, built in code (works from an installed package)."""
    cfg = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def head_revision() -> str:
    """The single head of the history; more than one head is a bug (two unmerged branches)."""
    heads = script_directory().get_heads()
    if len(heads) != 1:
        raise SchemaError(f"migration history has {len(heads)} heads ({', '.join(heads)}); merge them")
    return heads[0]


def migration_engine(url: str) -> Engine:
    """A private engine for migrations. On SQLite it makes DDL transactional and takes the write lock at
    BEGIN (``BEGIN IMMEDIATE``), which is what serialises concurrent starts."""
    if url.startswith("sqlite"):
        if url in ("sqlite://", "sqlite:///:memory:"):
            raise SchemaError("in-memory SQLite is not supported; use a file URL")
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        eng = create_engine(url, poolclass=NullPool, connect_args={"timeout": 60})

        @event.listens_for(eng, "connect")
        def _connect(dbapi_conn, _rec):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(eng, "begin")
        def _begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return eng
    return create_engine(url, poolclass=NullPool)


def lock_for_migration(conn: Connection) -> None:
    """Serialise migrations across processes (PostgreSQL; SQLite is already locked by BEGIN IMMEDIATE)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})


def current_revisions(url: str) -> tuple[str, ...]:
    eng = migration_engine(url)
    try:
        with eng.connect() as conn:
            return tuple(MigrationContext.configure(conn).get_current_heads())
    finally:
        eng.dispose()


def ensure_schema(url: str) -> str:
    """Upgrade the database at ``url`` to head (creating it if needed); returns the head revision."""
    with _lock:
        head = head_revision()
        if url in _ensured:
            return head
        current = current_revisions(url)
        if current != (head,):
            known = {s.revision for s in script_directory().walk_revisions()}
            unknown = [r for r in current if r not in known]
            if unknown:
                raise SchemaError(
                    f"database is at schema revision {unknown[0]}, unknown to this ivr version (newer code wrote it?)"
                )
            load_models()
            eng = migration_engine(url)
            try:
                with eng.begin() as conn:
                    lock_for_migration(conn)
                    command.upgrade(alembic_config(url, conn), "head")
            finally:
                eng.dispose()
        _ensured.add(url)
        return head


def forget(url: str | None = None) -> None:
    """Drop the per-process 'already ensured' cache (tests that recreate databases)."""
    with _lock:
        if url is None:
            _ensured.clear()
        else:
            _ensured.discard(url)
