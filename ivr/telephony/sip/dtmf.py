"""DTMF carried in SIP INFO bodies (application/dtmf-relay, application/dtmf)."""

from __future__ import annotations

import re

VALID = "0123456789*#ABCD"
_EVENT_CODES = {str(i): str(i) for i in range(10)} | {"10": "*", "11": "#", "12": "A", "13": "B", "14": "C", "15": "D"}
_SIGNAL = re.compile(r"^\s*signal\s*=\s*(\S+)\s*$", re.I | re.M)


def parse_info_dtmf(content_type: str | None, body: str) -> str | None:
    """The digit in an INFO body, '' for an empty keep-alive INFO, None when the body is not DTMF we know."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if not body.strip():
        return ""
    if ctype == "application/dtmf-relay":
        m = _SIGNAL.search(body)
        value = m.group(1) if m else ""
    elif ctype == "application/dtmf":
        value = body.strip()
    else:
        return None
    value = _EVENT_CODES.get(value, value).upper()
    return value if len(value) == 1 and value in VALID else None
