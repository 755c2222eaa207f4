"""`ivr models list | pull NAME | verify [NAME] | path NAME`: the Vosk model manager."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ivr.cli import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list, download, verify speech models")
    msub = p.add_subparsers(dest="models_cmd", metavar="ACTION", required=True)
    ls = msub.add_parser("list", help="known and installed models, with their short names (zh-CN-small, ...)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    pull = msub.add_parser("pull", help="download (or unpack --from FILE.zip), check sha256, install")
    pull.add_argument("name")
    pull.add_argument("--from", dest="source", metavar="FILE.zip", help="install from a zip downloaded elsewhere")
    pull.add_argument("--url", help="download from this address instead of the registry's")
    pull.add_argument("--force", action="store_true", help="reinstall even if an intact copy is installed")
    pull.set_defaults(func=cmd_pull)
    ver = msub.add_parser("verify", help="check installed models file by file (size and sha256)")
    ver.add_argument("name", nargs="?", help="model name or directory (default: every installed model)")
    ver.set_defaults(func=cmd_verify)
    path = msub.add_parser("path", help="print an installed model's directory")
    path.add_argument("name")
    path.set_defaults(func=cmd_path)


def _settings():
    from ivr.config import get_settings

    return get_settings()


def cmd_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ivr.asr.models import REGISTRY, custom_models, installed_dir

    s = _settings()
    rows = []
    for m in REGISTRY:
        d = installed_dir(m, s)
        source = f"PyPI {m.pypi}" if m.pypi else (m.url or "")
        rows.append({"name": m.name, "aliases": list(m.aliases), "language": m.language, "size": m.size,
                     "installed": d is not None,
                     "path": str(d) if d else "", "source": source, "description": m.description})
    for name, lang, d in custom_models(s):
        rows.append({"name": name, "aliases": [], "language": lang, "size": "?", "installed": True, "path": str(d),
                     "source": "local", "description": "installed with --from"})
    if args.json:
        for r in rows:
            print(json.dumps(r, ensure_ascii=False))
        return 0
    table = Table(title=f"Speech models (install dir {s.models_dir})")
    for col in ("name", "also called", "language", "size", "status", "description"):
        table.add_column(col)
    for r in rows:
        status = f"installed: {r['path']}" if r["installed"] else "not installed"
        table.add_row(r["name"], ", ".join(r["aliases"]), r["language"], r["size"], status, r["description"])
    Console(width=180).print(table)
    print("Every command takes a model's name or a short name from 'also called', e.g. `ivr models pull zh-CN-small`.")
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from ivr.asr.models import ModelError, pull

    err = Console(stderr=True)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                        TimeRemainingColumn(), console=err, transient=False)

    def factory(description: str, total: int | None):
        task = progress.add_task(description, total=total)
        return lambda n: progress.advance(task, n)

    try:
        with progress:
            path = pull(args.name, _settings(), source_zip=Path(args.source) if args.source else None,
                        url=args.url, force=args.force, progress=factory, say=lambda m: err.print(m, highlight=False))
    except ModelError as e:
        raise UserError(str(e)) from None
    print(path)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ivr.asr.models import REGISTRY, custom_models, installed_dir, verify

    s = _settings()
    if args.name:
        names: list[str | Path] = [Path(args.name) if "/" in args.name else args.name]
    else:
        names = [m.name for m in REGISTRY if installed_dir(m, s) is not None]
        names += [n for n, _l, _d in custom_models(s)]
        if not names:
            raise UserError("no models installed; see `ivr models list`")
    bad = 0
    for name in names:
        rep = verify(name, s)
        if rep.ok:
            print(f"ok       {rep.name}: {rep.checked} files intact ({rep.note}) at {rep.path}")
            continue
        bad += 1
        where = f" at {rep.path}" if rep.path else ""
        print(f"DAMAGED  {rep.name}{where}: {len(rep.problems)} problem(s)", file=sys.stderr)
        for p in rep.problems[:20]:
            print(f"         {p}", file=sys.stderr)
        if rep.path is not None:
            print(f"         fix: ivr models pull {rep.name} --force", file=sys.stderr)
    return 1 if bad else 0


def cmd_path(args: argparse.Namespace) -> int:
    from ivr.asr.models import ModelError, resolve_model

    try:
        d, _lang = resolve_model(args.name, _settings())
    except ModelError as e:
        raise UserError(str(e)) from None
    print(d)
    return 0
