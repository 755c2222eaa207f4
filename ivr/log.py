"""Logging with call ids and masked personal data.

Use ``logging.getLogger(__name__)`` everywhere; ``setup_logging()`` installs a handler whose records carry the
current call id (a context variable set by the call session) and whose messages pass through
:func:`ivr.privacy.mask_text`, so a phone number never reaches a log file in clear.
"""

from __future__ import annotations

import contextvars
import logging
import sys

from ivr.privacy import mask_text

call_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("call_id", default="-")


class _CallContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.call_id = call_id_var.get()
        try:
            msg = record.getMessage()
        except Exception:
            msg = str(record.msg)
        record.msg, record.args = mask_text(msg), None
        return True


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is logged (redirections and captures are honoured,
    and a closed earlier stream is never written to)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger once (idempotent)."""
    root = logging.getLogger()
    if any(getattr(h, "_ivr", False) for h in root.handlers):
        root.setLevel(level)
        return
    handler = _StderrHandler()
    handler._ivr = True  # type: ignore[attr-defined]
    handler.addFilter(_CallContextFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(call_id)s] %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # plugin set-up and per-migration lines at every start
