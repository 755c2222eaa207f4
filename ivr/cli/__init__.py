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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivr", description="Offline Mandarin voice customer-service bot.")
    parser.add_argument("--config", help="TOML config file (default: $IVR_CONFIG or ./ivr.toml)")
    parser.add_argument("--version", action="version", version=f"ivr {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in GROUPS:
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

    parser = build_parser()
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
