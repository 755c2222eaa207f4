"""Masking of personal data. Every log line, transcript and record writer goes through these helpers.

What survives masking: a phone's first three digits (``138****``: never any of the last four, which answer the
verification question), an address up to its district (``上海市浦东新区****``), a name's first character (the
surname, ``张*``). Answers to the verification question lose every digit, Arabic or spoken (五六七八, 幺, 两).
"""

from __future__ import annotations

import re

# Mainland mobiles (1[3-9]x, 11 digits), landlines with area code, and +86 forms; digit runs of 7+ that
# look like phone numbers. Order numbers are not phones: they are masked only where a caller reads them
# next to phone words, which the dialogue handles, so we keep 12+ digit runs untouched here.
_PHONE_RE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d[- ]?\d{4}[- ]?\d{4}|0\d{2,3}[- ]?\d{7,8})(?!\d)")
_CN_DIGITS = "零〇一二两三四五六七八九幺"
_SPOKEN_PHONE_RE = re.compile(rf"(?<![{_CN_DIGITS}])(?<![{_CN_DIGITS}] )(?:[{_CN_DIGITS}] ?){{10}}[{_CN_DIGITS}](?! ?[{_CN_DIGITS}])")
# A phone tail said outside the verification question ("订单 ... 尾号 八零零零"): the digits after the words.
_TAIL_RE = re.compile(rf"(尾号|后[四五六七八4-8]位|末[四4]位)(?:是|为)?(\s*[0-9０-９{_CN_DIGITS}][0-9０-９{_CN_DIGITS} ]*)")
_HAN = r"\u4e00-\u9fff"
# An address: optional province, city, district (kept), then a street part with a road/house word (masked).
_ADMIN = (rf"(?:[{_HAN}]{{1,6}}?(?:省|自治区))?(?:[{_HAN}]{{1,6}}?(?:市|州|盟)(?:[{_HAN}]{{1,5}}?(?:区|县|旗))?"
          rf"|[{_HAN}]{{1,5}}?(?:区|县|旗))")
_STREET_WORDS = r"路|街|大道|巷|弄|胡同|(?<![单账型编代])号|楼|室|栋|幢|单元|小区|花园|公寓|村|镇|乡"
_ADDRESS_RE = re.compile(rf"({_ADMIN})(?!的)([{_HAN}0-9A-Za-z\-#－]*?(?:{_STREET_WORDS})[{_HAN}0-9A-Za-z\-#－]*)")
_ADDRESS_HEAD_RE = re.compile(rf"^(?:[{_HAN}]{{1,6}}?(?:省|自治区))?(?:[{_HAN}]{{1,6}}?(?:市|州|盟))?"
                              rf"(?:[{_HAN}]{{1,5}}?(?:区|县|旗|市))?")
# A name the caller gives ("我叫张伟", "收货人是李娜"): the surname stays.
_NAME_RE = re.compile(rf"(我叫|我的名字是|名字是|名字叫|姓名是|姓名|收货人是|收货人叫|收货人|联系人是|联系人)"
                      rf"\s*((?![是叫])[{_HAN}]{{2,4}})(?!\*)")


def mask_phone(phone: str | None) -> str:
    """'13812345678' -> '138****': the network prefix only, never a digit of the tail (the verification secret)."""
    if not phone:
        return ""
    if "*" in phone:  # already masked (writers mask again at write time): keep at most the prefix
        return re.match(r"\d{0,3}", phone.strip()).group(0) + "****"  # type: ignore[union-attr]
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if len(digits) >= 7:
        return f"{digits[:3]}****"
    return "*" * len(digits)


def mask_name(name: str | None) -> str:
    """Keep the first character (family name in Chinese, initial elsewhere): '张伟' -> '张*'."""
    if not name:
        return ""
    name = name.strip()
    return name[0] + "*" * max(1, min(len(name) - 1, 3))


def mask_address(address: str | None) -> str:
    """Keep the province/city/district and hide everything after it: '上海市浦东新区张江路1号' -> '上海市浦东新区****'."""
    if not address:
        return ""
    head = _ADDRESS_HEAD_RE.match(address.strip())
    return (head.group(0) if head else "") + "****"


def _mask_address_in(m: re.Match[str]) -> str:
    return m.group(1) + "****"


def mask_text(text: str | None) -> str:
    """Mask phone numbers (digits or 11 spoken Chinese digits), street addresses after the district and names
    given after 我叫/收货人/联系人 found anywhere in free text."""
    if not text:
        return text or ""
    text = _PHONE_RE.sub(lambda m: mask_phone(m.group(1)), text)
    text = _SPOKEN_PHONE_RE.sub(lambda m: m.group(0).replace(" ", "")[:3] + "****", text)
    text = _TAIL_RE.sub(lambda m: m.group(0)[:len(m.group(0)) - len(m.group(2))] + mask_secret(m.group(2)), text)
    text = _ADDRESS_RE.sub(_mask_address_in, text)
    return _NAME_RE.sub(lambda m: m.group(1) + mask_name(m.group(2)), text)


_SECRET_DIGITS_RE = re.compile(r"[0-9０-９" + _CN_DIGITS + "]")


def mask_secret(text: str | None) -> str:
    """Every digit (Arabic, full-width or spoken Chinese) as '*': for answers to verification questions (the
    phone's last four digits are a credential, kept out of records and agents' screens)."""
    return _SECRET_DIGITS_RE.sub("*", text or "")


def mask_deep(value: object) -> object:
    """Free-text masking (:func:`mask_text`) of every string inside JSON-like data; keys naming a phone get
    :func:`mask_phone`. For contexts stored with tickets (hand-off, transcript)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: (mask_phone(v) if isinstance(v, str) and "phone" in str(k).lower() else mask_deep(v))
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_deep(v) for v in value]
    return value
