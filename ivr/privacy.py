"""Masking of personal data. Every log line, transcript and record writer goes through these helpers."""

from __future__ import annotations

import re

# Mainland mobiles (1[3-9]x, 11 digits), landlines with area code, and +86 forms; digit runs of 7+ that
# look like phone numbers. Order numbers are not phones: they are masked only where a caller reads them
# next to phone words, which the dialogue handles, so we keep 12+ digit runs untouched here.
_PHONE_RE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d[- ]?\d{4}[- ]?\d{4}|0\d{2,3}[- ]?\d{7,8})(?!\d)")
_CN_DIGITS = "零〇一二两三四五六七八九幺"
_SPOKEN_PHONE_RE = re.compile(rf"[{_CN_DIGITS}]{{11}}")


def mask_phone(phone: str | None) -> str:
    """'13812345678' -> '138****5678'; short values keep only their last two digits."""
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)
    if len(digits) >= 7:
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) >= 3:
        return "*" * (len(digits) - 2) + digits[-2:]
    return "*" * len(digits)


def mask_name(name: str | None) -> str:
    """Keep the first character (family name in Chinese, initial elsewhere): '张伟' -> '张*'."""
    if not name:
        return ""
    name = name.strip()
    return name[0] + "*" * max(1, min(len(name) - 1, 3))


def mask_address(address: str | None) -> str:
    """Keep the coarse part (up to the district/city) and hide the street and house number."""
    if not address:
        return ""
    m = re.match(r"^(.{0,12}?(?:区|县|市))", address)
    head = m.group(1) if m else address[:4]
    return head + "****"


def mask_text(text: str | None) -> str:
    """Mask phone numbers found anywhere in free text (digits or 11 spoken Chinese digits)."""
    if not text:
        return text or ""
    text = _PHONE_RE.sub(lambda m: mask_phone(m.group(1)), text)
    return _SPOKEN_PHONE_RE.sub(lambda m: m.group(0)[:3] + "****" + m.group(0)[-4:], text)


_SECRET_DIGITS_RE = re.compile(r"[0-9０-９" + _CN_DIGITS + "]")


def mask_secret(text: str | None) -> str:
    """Every digit (Arabic, full-width or spoken Chinese) as '*': for answers to verification questions (the
    phone's last four digits are a credential, kept out of records and agents' screens)."""
    return _SECRET_DIGITS_RE.sub("*", text or "")
