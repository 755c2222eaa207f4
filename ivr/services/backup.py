"""Backup and restore of one shop: database (orders, call records, accounts), recordings, secret key, overrides.

A backup is a folder: ``ivr.db`` (SQLite, copied with SQLite's online backup API, so a running service keeps
working and the copy is consistent) or ``db.pgdump`` (``pg_dump --format=custom``), the folders
``recordings/`` and ``custom/``, the ``secret_key`` file, and ``manifest.json`` with the sha256 of every file.
Restore checks the manifest first, then puts everything into the (new) data dir / database.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from ivr.config import Settings

FORMAT = 1
MANIFEST = "manifest.json"
FOLDERS = ("recordings", "custom")


class BackupError(Exception):
    """Backup or restore failed; one line for the operator."""


def _sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        return None
    if not u.database or u.database == ":memory:":
        raise BackupError(f"cannot back up an in-memory database ({url})")
    return Path(u.database)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string for pg_dump/pg_restore (password passed in PGPASSWORD, not argv)."""
    u = make_url(url)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    conn = u.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return conn, env


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    except FileNotFoundError:
        raise BackupError(f"{cmd[0]} is not installed (apt install postgresql-client)") from None
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["unknown error"]
        raise BackupError(f"{what} failed: {last[0][:200]}")


def _counts(url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url)
    try:
        names = set(inspect(engine).get_table_names())
        out = {}
        with engine.connect() as c:
            for table in ("orders", "call_records", "agents"):
                if table in names:
                    out[table] = int(c.execute(text(f"SELECT count(*) FROM {table}")).scalar() or 0)
        return out
    finally:
        engine.dispose()


def backup(settings: Settings, dest: Path) -> dict:
    """Write a backup of the shop into the new or empty folder ``dest``; returns the manifest."""
    dest = Path(dest).expanduser()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} exists and is not an empty folder: give a new one")
    url = settings.database_url
    src_db = _sqlite_path(url)
    if src_db is not None and not src_db.is_file():
        raise BackupError(f"no database at {src_db}: nothing to back up")
    dest.mkdir(parents=True, exist_ok=True)
    os.chmod(dest, 0o700)  # holds the secret key and callers' data
    if src_db is not None:
        src = sqlite3.connect(f"file:{src_db}?mode=ro", uri=True)
        dst = sqlite3.connect(dest / "ivr.db")
        try:
            with dst:
                src.backup(dst)
        finally:
            dst.close()
            src.close()
        db_kind = "sqlite"
    else:
        conn, env = _libpq(url)
        _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(dest / "db.pgdump"), conn], env, "pg_dump")
        db_kind = "postgresql"
    data = Path(settings.data_dir)
    for folder in FOLDERS:
        if (data / folder).is_dir():
            shutil.copytree(data / folder, dest / folder)
    if (data / "secret_key").is_file():
        shutil.copy2(data / "secret_key", dest / "secret_key")
        os.chmod(dest / "secret_key", 0o600)
    files = {p.relative_to(dest).as_posix(): _sha256(p) for p in sorted(dest.rglob("*")) if p.is_file()}
    manifest = {"format": FORMAT, "created": datetime.now(UTC).isoformat(timespec="seconds"), "database": db_kind,
                "counts": _counts(url), "files": files}
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    return manifest


def read_manifest(src: Path) -> dict:
    """The backup's manifest after checking every file's sha256."""
    src = Path(src).expanduser()
    try:
        manifest = json.loads((src / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise BackupError(f"{src} is not an ivr backup (no readable {MANIFEST})") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{src}: backup format {manifest.get('format')!r} is not supported (expected {FORMAT})")
    for rel, digest in manifest.get("files", {}).items():
        f = src / rel
        if not f.is_file():
            raise BackupError(f"backup {src} is incomplete: {rel} is missing")
        if _sha256(f) != digest:
            raise BackupError(f"backup {src} is damaged: {rel} does not match its checksum")
    return manifest


def restore(settings: Settings, src: Path, *, force: bool = False) -> dict:
    """Put a backup into ``settings``' data dir and database. Refuses to overwrite a shop unless ``force``.

    Stop the service of that data dir first; the restored service then starts with the backed-up state.
    """
    src = Path(src).expanduser()
    manifest = read_manifest(src)
    url = settings.database_url
    target_db = _sqlite_path(url)
    data = Path(settings.data_dir)
    if manifest["database"] == "sqlite":
        if target_db is None:
            raise BackupError("this backup holds a SQLite database; set db_url to a SQLite file (or leave it empty)")
        if target_db.exists() and not force:
            raise BackupError(f"{target_db} already exists: restore into a new data dir, or add --force to replace it")
        target_db.parent.mkdir(parents=True, exist_ok=True)
        tmp = target_db.with_name(f".{target_db.name}.restore-{os.getpid()}")
        shutil.copyfile(src / "ivr.db", tmp)
        for suffix in ("-wal", "-shm"):
            Path(f"{target_db}{suffix}").unlink(missing_ok=True)
        os.replace(tmp, target_db)
    else:
        if target_db is not None:
            raise BackupError("this backup holds a PostgreSQL dump; set db_url to the PostgreSQL database to fill")
        if _counts(url).get("orders") and not force:
            raise BackupError("the target PostgreSQL database already has orders: add --force to replace them")
        conn, env = _libpq(url)
        _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", "--dbname", conn,
              str(src / "db.pgdump")], env, "pg_restore")
    data.mkdir(parents=True, exist_ok=True)
    for folder in FOLDERS:
        if (src / folder).is_dir():
            if (data / folder).exists():
                shutil.rmtree(data / folder)
            shutil.copytree(src / folder, data / folder)
    if (src / "secret_key").is_file():
        shutil.copyfile(src / "secret_key", data / "secret_key")
        os.chmod(data / "secret_key", 0o600)
    return manifest
