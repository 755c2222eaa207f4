"""The ``ivr`` command. One module per command group; each exposes ``register(subparsers)``.

Errors a user can cause (bad files, bad settings, bad text) print one line to stderr and exit 2;
nothing a user does should produce a traceback. Set IVR_DEBUG=1 to see tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ivr.errors import UserError  # lives in ivr/errors.py: benchmarks raise it without importing the CLI

# Command-group modules, in help order. A module that fails to import (while being developed) does not
# break the other commands: its error is reported when that group is used.
GROUPS = [
    "serve", "say", "transcribe", "models", "db", "nlu", "chat", "replay", "bench", "agents", "records", "feedback",
    "backup",
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ivr")
    except PackageNotFoundError:
        return "unknown"


def _group(argv: list[str]) -> str | None:
    """The command group named on the command line when it is one of :data:`GROUPS` (its module alone is then
    imported: ~0.5-1 s less start-up per command); None (all groups) for help, --version or another command."""
    words = iter(argv)
    for a in words:
        if a == "--config":
            next(words, None)
        elif a.startswith("--config="):
            continue
        else:
            return a if a in GROUPS else None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``ivr`` parser: every group, or with ``argv`` only the group it names (see :func:`_group`)."""
    parser = argparse.ArgumentParser(prog="ivr", description="Offline Mandarin voice customer-service bot.")
    parser.add_argument("--config", help="TOML config file (default: $IVR_CONFIG or ./ivr.toml)")
    parser.add_argument("--version", action="version", version=f"ivr {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    only = _group(argv) if argv is not None else None
    for name in GROUPS:
        if only is not None and name != only:
            continue
        try:
            mod = importlib.import_module(f"ivr.cli.{name}_cmd")
        except ModuleNotFoundError as e:
            if e.name == f"ivr.cli.{name}_cmd":
                continue  # group not built yet
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ivr.audio.files import AudioFileError
    from ivr.config import ConfigError
    from ivr.log import setup_logging

    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.config:
        os.environ["IVR_CONFIG"] = args.config
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        from ivr.config import get_settings

        setup_logging(os.environ.get("IVR_LOG_LEVEL", "WARNING") if args.command != "serve" else get_settings().log_level)
        rc = args.func(args)
        return int(rc or 0)
    except (UserError, ConfigError, AudioFileError) as e:
        print(f"ivr {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ivr {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # last resort: one line, not a traceback
        if os.environ.get("IVR_DEBUG"):
            raise
        print(f"ivr {args.command}: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
