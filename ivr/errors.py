"""Errors every layer may raise for the command line to print as one line (exit code 2), without importing it."""

from __future__ import annotations


class UserError(Exception):
    """An error caused by input; printed as one line, exit code 2."""
