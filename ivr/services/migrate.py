"""Schema migrations: one Alembic history for every table of the project, shipped inside the package.

``ensure_schema(url)`` upgrades any database to head. It is cheap when the schema is current (the head read from
the revision files, one read of ``alembic_version``, then cached per process; Alembic itself, ~0.3 CPU-s to import,
is loaded only to upgrade), and safe when several processes start at once: the upgrade runs in one
transaction under a lock (SQLite ``BEGIN IMMEDIATE`` with transactional DDL; PostgreSQL an advisory
transaction lock), so the second process waits, then finds the schema at head and does nothing.

Table modules are found by name: every module under ``ivr.services`` named ``models``/``tables`` or ending
in ``_models``/``_tables`` is imported by ``load_models()`` (and by Alembic's env.py).
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, MetaData, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from ivr.services.db import Base

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

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
    from alembic.config import Config

    cfg = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


def script_directory() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://"))


_REVISION_LINE = re.compile(r"^(revision|down_revision)\b[^=\n]*=\s*(.+)$", re.M)


def head_from_files() -> str | None:
    """The head as the revision files say it, read without Alembic: the one revision no other revises; None when
    the files do not say it plainly (then Alembic decides)."""
    revisions: set[str] = set()
    downs: set[str] = set()
    for f in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = dict(_REVISION_LINE.findall(f.read_text(encoding="utf-8")))
        if not found:  # __init__.py
            continue
        try:
            rev, down = ast.literal_eval(found["revision"]), ast.literal_eval(found.get("down_revision", "None"))
        except (KeyError, ValueError, SyntaxError):
            return None
        revisions.add(rev)
        downs.update([down] if isinstance(down, str) else down or ())
    heads = revisions - downs
    return next(iter(heads)) if len(heads) == 1 else None


def _at_revision(url: str, revision: str) -> bool:
    """Whether the database's ``alembic_version`` holds exactly ``revision`` (no Alembic import)."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return False
    eng = create_engine(url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        return list(rows) == [revision]
    except SQLAlchemyError:  # no table yet, no database: Alembic's path says what is wrong
        return False
    finally:
        eng.dispose()


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
    from alembic.runtime.migration import MigrationContext

    eng = migration_engine(url)
    try:
        with eng.connect() as conn:
            return tuple(MigrationContext.configure(conn).get_current_heads())
    finally:
        eng.dispose()


def ensure_schema(url: str) -> str:
    """Upgrade the database at ``url`` to head (creating it if needed); returns the head revision."""
    with _lock:
        quick = head_from_files()
        if quick is not None and (url in _ensured or _at_revision(url, quick)):
            _ensured.add(url)
            return quick
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
                    from alembic import command

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
