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


class _VersionAction(argparse.Action):
    """``--version``: argparse's version action, except that the version is looked up only when asked for (the
    package metadata scan costs every other command ~30 ms)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, default: str = argparse.SUPPRESS,
                 help: str = "show program's version number and exit") -> None:
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        formatter = parser._get_formatter()
        formatter.add_text(f"ivr {_version()}")
        parser._print_message(formatter.format_help(), sys.stdout)
        parser.exit()


def _group(argv: list[str]) -> str | None:
    """The command group named on the command line when it is one of :data:`GROUPS` (its module alone is then
    imported: ~0.5-1 s less start-up per command); "" (no group: argparse prints the version and exits before
    it looks at anything after it) for ``--version``; None (all groups) for help or another command."""
    words = iter(argv)
    for a in words:
        if a == "--config":
            next(words, None)
        elif a.startswith("--config="):
            continue
        elif a == "--version":
            return ""
        else:
            return a if a in GROUPS else None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``ivr`` parser: every group, or with ``argv`` only the group it names (see :func:`_group`)."""
    parser = argparse.ArgumentParser(prog="ivr", description="Offline Mandarin voice customer-service bot.")
    parser.add_argument("--config", help="TOML config file (default: $IVR_CONFIG or ./ivr.toml)")
    parser.add_argument("--version", action=_VersionAction)
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


def _user_error(e: Exception) -> bool:
    """An error a user can cause: :class:`UserError`, ``ivr.config.ConfigError`` or ``ivr.audio.files.AudioFileError``.
    The last two are looked up only in modules already imported (an error of a module that was never imported cannot
    have been raised), so that commands which need neither settings nor audio files do not import them (pydantic,
    numpy)."""
    if isinstance(e, UserError):
        return True
    config, files = sys.modules.get("ivr.config"), sys.modules.get("ivr.audio.files")
    return (config is not None and isinstance(e, config.ConfigError)) or \
        (files is not None and isinstance(e, files.AudioFileError))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.config:
        os.environ["IVR_CONFIG"] = args.config
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        from ivr.log import setup_logging

        if args.command == "serve":
            from ivr.config import get_settings

            setup_logging(get_settings().log_level)
        else:
            setup_logging(os.environ.get("IVR_LOG_LEVEL", "WARNING"))
        rc = args.func(args)
        return int(rc or 0)
    except KeyboardInterrupt:
        print(f"ivr {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if _user_error(e):
            print(f"ivr {args.command}: error: {e}", file=sys.stderr)
            return 2
        if os.environ.get("IVR_DEBUG"):  # last resort: one line, not a traceback
            raise
        print(f"ivr {args.command}: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
