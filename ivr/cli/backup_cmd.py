"""`ivr backup DIR` / `ivr restore DIR`: the whole shop (database, recordings, secret key, overrides) to a folder.

`ivr backup` works on a running service (SQLite online backup API, or pg_dump). `ivr restore` checks the
backup's checksums, then fills the data dir of the current settings (stop its service first); it refuses to
replace an existing database unless --force.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ivr.cli import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backup", help="copy the shop, records, accounts, recordings, secret key and overrides to DIR")
    p.add_argument("dir", help="new (or empty) folder for the backup")
    p.add_argument("--json", action="store_true", help="print the backup's manifest as JSON")
    p.set_defaults(func=_backup)
    p = sub.add_parser("restore", help="restore a backup made by `ivr backup` into the data dir (service stopped)")
    p.add_argument("dir", help="folder written by `ivr backup`")
    p.add_argument("--force", action="store_true", help="replace an existing database and files")
    p.add_argument("--json", action="store_true", help="print the restored backup's manifest as JSON")
    p.set_defaults(func=_restore)


def _summary(manifest: dict) -> str:
    counts = manifest.get("counts", {})
    return (f"{counts.get('orders', 0)} orders, {counts.get('call_records', 0)} call records, "
            f"{counts.get('agents', 0)} accounts, {len(manifest.get('files', {}))} files")


def _backup(args: argparse.Namespace) -> int:
    from ivr.config import get_settings
    from ivr.services.backup import BackupError, backup

    try:
        manifest = backup(get_settings(), Path(args.dir))
    except BackupError as e:
        raise UserError(str(e)) from None
    if args.json:
        print(json.dumps(manifest, ensure_ascii=False))
    else:
        print(f"backup written to {args.dir}: {_summary(manifest)}")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from ivr.config import get_settings
    from ivr.services.backup import BackupError, restore
    from ivr.services.migrate import ensure_schema

    settings = get_settings()
    try:
        manifest = restore(settings, Path(args.dir), force=args.force)
    except BackupError as e:
        raise UserError(str(e)) from None
    ensure_schema(settings.database_url)  # a backup from an older version is upgraded now, not at first start
    if args.json:
        print(json.dumps(manifest, ensure_ascii=False))
    else:
        print(f"restored {args.dir} (made {manifest.get('created')}) into {settings.data_dir}: {_summary(manifest)}")
    return 0
