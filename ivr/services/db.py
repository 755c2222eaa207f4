"""Database plumbing shared by every service: one SQLAlchemy engine per URL, sessions, declarative Base.

SQLite (the embedded default) and PostgreSQL run the same code. Schema changes go through Alembic
(``ivr/services/migrations``); ``ensure_schema()`` upgrades a database to head and is safe to call at every start.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker


class Base(DeclarativeBase):
    """Declarative base of every table in the project."""


_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def get_engine(url: str) -> Engine:
    """One engine per URL per process; SQLite gets WAL, foreign keys, a busy timeout and ``synchronous=FULL``:
    a commit returns only after the WAL is fsynced, so a write the caller heard confirmed survives a crash (kill -9)
    and a power loss. (PostgreSQL: keep its default ``synchronous_commit=on``.)"""
    with _lock:
        eng = _engines.get(url)
        if eng is None:
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
                eng = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

                @event.listens_for(eng, "connect")
                def _sqlite_pragmas(dbapi_conn, _rec):
                    cur = dbapi_conn.cursor()
                    cur.execute("PRAGMA journal_mode=WAL")
                    cur.execute("PRAGMA foreign_keys=ON")
                    cur.execute("PRAGMA synchronous=FULL")
                    cur.close()
            else:
                eng = create_engine(url, pool_pre_ping=True)
            _engines[url] = eng
        return eng


def dispose_engine(url: str) -> None:
    """Close and forget the engine of ``url`` (a database about to be deleted, e.g. a replay call's copy)."""
    with _lock:
        eng = _engines.pop(url, None)
    if eng is not None:
        eng.dispose()


def session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


@contextmanager
def transaction(url: str) -> Iterator[Session]:
    """A session in one transaction: commit on success, roll back on any exception."""
    with session_factory(url)() as s, s.begin():
        yield s
