"""PII masking applied to every record at write time (on top of whatever the writer already masked)."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

from ivr.privacy import mask_address, mask_name, mask_phone, mask_text

_PHONE_KEYS = re.compile(r"phone|mobile|tel|caller", re.I)
_NAME_KEYS = re.compile(r"name|contact|receiver|recipient", re.I)
_ADDRESS_KEYS = re.compile(r"address|addr", re.I)
_IDENTIFIER = re.compile(r"[0-9A-Za-z_-]{1,40}")
_MOBILE = re.compile(r"(?:\+?86)?1[3-9]\d{9}")


def mask_value(key: str, value: Any) -> Any:
    """Mask one slot value by what its key says it holds; free text gets phone masking."""
    if isinstance(value, dict):
        return mask_slots(value)
    if isinstance(value, list | tuple):
        return [mask_value(key, v) for v in value]
    if not isinstance(value, str):
        return value
    if _PHONE_KEYS.search(key):
        return mask_phone(value)
    if key.lower().endswith("_id") and _IDENTIFIER.fullmatch(value) and not _MOBILE.fullmatch(value):
        return value  # a shop or call identifier (order, RMA, ticket) is kept whole: a random RMA 86 0451 709776
        #               read as a +86 landline; a mobile number said where an id was asked is still masked
    if _ADDRESS_KEYS.search(key):
        return mask_address(value)
    if _NAME_KEYS.search(key) and not key.lower().endswith(("_id", "intent")):
        return mask_name(value)
    return mask_text(value)


def mask_slots(slots: dict[str, Any] | None) -> dict[str, Any]:
    return {str(k): mask_value(str(k), v) for k, v in (slots or {}).items()}


def caller_key(caller_id: str, secret: str = "") -> str:
    """A keyed hash of the caller's digits: counts repeat callers without keeping the number."""
    digits = re.sub(r"\D", "", caller_id or "")
    if not digits:
        return ""
    return hmac.new(("ivr-caller:" + secret).encode(), digits.encode(), hashlib.sha256).hexdigest()[:24]
