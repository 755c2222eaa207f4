"""Masking of personal data. Every log line, transcript and record writer goes through these helpers.

What survives masking: a phone's first three digits (``138****``: never any of the last four, which answer the
verification question), an address up to its district (``上海市浦东新区****``), a name's first character (the
surname, ``张*``), an e-mail address's first character and domain (``z***@qq.com``), an identity-card number's
first three characters (``110****``, the pack's ``national_id``). Answers to the verification question lose every
digit, Arabic or spoken (五六七八, 幺, 两).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

# The language packs' folders: each pack's ``privacy.yaml`` says what phones, addresses and names look like in its
# locale. Read as data (this module sits below ivr.lang and imports nothing of it), on the first masking call.
LANG_DIR = Path(__file__).resolve().parent / "lang"
_DIGITS = "0-9"  # Arabic digits; a pack adds its other written forms and its spoken ones
# An e-mail address (ASCII: in Chinese text the local part starts after the last non-ASCII character); its domain
# ends in letters, so a SIP URI with an IP address (sip:a@127.0.0.1) is not one, while sip:1001@pbx.example.com is.
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9_%+-])[A-Za-z0-9._%+-]*@"
                    r"((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})(?![A-Za-z0-9-])")


def _alt(words: list[str]) -> str:
    return "|".join(words)


class _Rules:
    """One pack's masking patterns, compiled from its ``privacy.yaml`` (a missing entry: that rule is off)."""

    def __init__(self, d: dict[str, Any]) -> None:
        self.written_digits = wide = str(d.get("written_digits") or "")
        self.spoken_digits = dig = str(d.get("spoken_digits") or "")
        self.country_code, self.national_digits = str(d.get("country_code") or ""), int(d.get("national_digits", 11))
        fold_from, fold_to = d.get("fold") or ("", "")
        self.fold = str.maketrans(fold_from, fold_to)  # one character for one: positions stay the same
        self.to_fold = re.compile(f"[{re.escape(fold_from)}]") if fold_from else None
        self.phone = re.compile(d["phone"]) if d.get("phone") else None
        self.national_id = re.compile(d["national_id"]) if d.get("national_id") else None
        self.phone_spaced = re.compile(d["phone_spaced"]) if d.get("phone_spaced") else None
        self.phone_not_after = re.compile(d["phone_not_after"]) if d.get("phone_not_after") else None
        n = self.national_digits
        self.spoken_phone = re.compile(rf"(?<![{dig}])(?<![{dig}] )(?:[{dig}] ?){{{n - 1}}}[{dig}](?! ?[{dig}])") \
            if dig else None
        self.tail = re.compile(rf"({_alt(d['tail_words'])})(?:{_alt(d.get('tail_links') or [])})?"
                               rf"(\s*[{_DIGITS}{wide}{dig}][{_DIGITS}{wide}{dig} ]*)") if d.get("tail_words") else None
        han, a, name = d.get("name_chars", ""), d.get("address"), d.get("name")
        self.address: re.Pattern[str] | None = None
        self.address_head: re.Pattern[str] | None = None
        self.name: re.Pattern[str] | None = None
        self.intro: re.Pattern[str] | None = None
        self.street: re.Pattern[str] | None = None
        if a:
            def level(key: str, extra: list[str] | None = None) -> str:
                return rf"[{han}]{{1,{a[key]['max']}}}?(?:{_alt([*a[key]['words'], *(extra or [])])})"

            prov, city, dist = level("province"), level("city"), level("district")
            chars = f"{han}{a.get('street_chars', '')}"
            not_after = f"(?!{_alt(a['not_followed_by'])})" if a.get("not_followed_by") else ""
            self.address = re.compile(rf"((?:{prov})?(?:{city}(?:{dist})?|{dist})){not_after}"
                                      rf"([{chars}]*?(?:{_alt(a['street_words'])})[{chars}]*)")
            field_dist = level("district", a.get("district_in_field"))
            self.address_head = re.compile(rf"^(?:{prov})?(?:{city})?(?:{field_dist})?")
            if d.get("street"):
                self.street = _street(d["street"], han, chars)
        if name:
            not_first = f"(?![{name['not_first']}])" if name.get("not_first") else ""
            given = rf"(?![{name['stop']}])[{han}]" if name.get("stop") else f"[{han}]"
            self.name = re.compile(rf"({_alt(name['words'])})\s*({not_first}[{han}](?:{given}){{{name['min'] - 1},"
                                   rf"{name['max'] - 1}}})(?!\*)")
            if name.get("intro_words") and name.get("surnames"):
                surname = _alt([*(name.get("compound_surnames") or []), f"[{''.join(name['surnames'].split())}]"])
                not_names = f"(?!{_alt(name['not_names'])})" if name.get("not_names") else ""
                self.intro = re.compile(rf"({_alt(name['intro_words'])})\s*({not_names}(?:{surname})(?:{given}){{1,2}})"
                                        rf"(?!\*)")

    def mask(self, text: str) -> str:
        """Identity-card numbers, phones, spoken phones, phone tails, street addresses and given names in ``text``
        masked."""
        if self.national_id is not None:
            text = self.national_id.sub(lambda m: m.group(0)[:3] + "****", text)
        if self.phone is not None:
            text = self._phones(self.phone, text, self.phone_not_after)
        if self.phone_spaced is not None:
            text = self._phones(self.phone_spaced, text)
        if self.spoken_phone is not None:
            text = self.spoken_phone.sub(lambda m: m.group(0).replace(" ", "")[:3] + "****", text)
        if self.tail is not None:
            text = self.tail.sub(lambda m: m.group(0)[:len(m.group(0)) - len(m.group(2))] + mask_secret(m.group(2)),
                                 text)
        if self.address is not None:
            text = self.address.sub(lambda m: m.group(1) + "****", text)
        if self.street is not None:
            text = self.street.sub("****", text)
        if self.name is not None:
            text = self.name.sub(lambda m: m.group(1) + mask_name(m.group(2)), text)
        if self.intro is not None:
            text = self.intro.sub(lambda m: m.group(1) + mask_name(m.group(2)), text)
        return text

    def _phones(self, pattern: re.Pattern[str], text: str, not_after: re.Pattern[str] | None = None) -> str:
        """``pattern``'s phones (group 1) masked, looked for in ``text`` with its full-width digits folded. A
        landline-shaped number right after ``not_after`` (an order number's words) is kept."""
        folded = text.translate(self.fold) if self.to_fold is not None and self.to_fold.search(text) else text
        out, end = [], 0
        for m in pattern.finditer(folded):
            if not_after is not None and m.group(1).startswith("0") and not_after.search(folded, 0, m.start()):
                continue
            out += [text[end:m.start()], mask_phone(m.group(1))]
            end = m.end()
        return "".join([*out, text[end:]]) if out else text


def _street(d: dict[str, Any], han: str, chars: str) -> re.Pattern[str]:
    """A street address without the city or district before it: a road or estate name's last two characters
    (none of ``name_not``), maybe a direction, the road word, a number and a house word, then the rest of it."""
    name = rf"(?![{d['name_not']}])[{han}]" if d.get("name_not") else f"[{han}]"
    direction = f"[{d['directions']}]?" if d.get("directions") else ""
    return re.compile(rf"{name}{{2}}{direction}(?:{_alt(d['words'])})\s*{d['number']}\s*(?:{_alt(d['house_words'])})"
                      rf"[{chars}]*")


@cache
def _rules() -> tuple[_Rules, ...]:
    """Every installed pack's rules (loaded once). No pack with rules is an error: nothing could be masked."""
    import yaml  # only when masking starts: importing this module stays cheap

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    out = []
    for path in sorted(LANG_DIR.glob("*/privacy.yaml")):
        if (path.parent / "pack.yaml").is_file():
            with path.open(encoding="utf-8") as f:
                out.append(_Rules(yaml.load(f, Loader=loader) or {}))  # a safe loader (see above)
    if not out:
        raise RuntimeError(f"no language pack under {LANG_DIR} has a privacy.yaml: personal data cannot be masked")
    return tuple(out)


@cache
def _secret_digits() -> re.Pattern[str]:
    rules = _rules()
    return re.compile(f"[{_DIGITS}{''.join(r.written_digits for r in rules)}{''.join(r.spoken_digits for r in rules)}]")


def mask_phone(phone: str | None) -> str:
    """'13812345678' -> '138****': the network prefix only, never a digit of the tail (the verification secret)."""
    if not phone:
        return ""
    if "*" in phone:  # already masked (writers mask again at write time): keep at most the prefix
        return re.match(r"\d{0,3}", phone.strip()).group(0) + "****"  # type: ignore[union-attr]
    digits = re.sub(r"\D", "", phone)
    for r in _rules():  # a country code in front of a national number is dropped first
        if r.country_code and len(digits) == len(r.country_code) + r.national_digits \
                and digits.startswith(r.country_code):
            digits = digits[len(r.country_code):]
            break
    if len(digits) >= 7:
        return f"{digits[:3]}****"
    return "*" * len(digits)


def mask_name(name: str | None) -> str:
    """Keep the first character (family name in Chinese, initial elsewhere): '张伟' -> '张*'."""
    name = (name or "").strip()
    if not name:  # blank or only spaces: nothing to keep
        return ""
    return name[0] + "*" * max(1, min(len(name) - 1, 3))


def mask_address(address: str | None) -> str:
    """Keep the province/city/district and hide everything after it: '上海市浦东新区张江路1号' -> '上海市浦东新区****'."""
    if not address:
        return ""
    heads = (r.address_head.match(address.strip()) for r in _rules() if r.address_head is not None)
    return max((h.group(0) for h in heads if h), key=len, default="") + "****"


def mask_text(text: str | None) -> str:
    """Mask phone numbers (digits, full-width, grouped or one by one, or 11 spoken digits; not the shop's order and
    waybill numbers), street addresses after the district (all of it when no district is named), names given
    after the pack's cue words (我叫, 收货人/收件人/联系人, 我是 + a surname), e-mail addresses and identity-card
    numbers found anywhere in free text."""
    if not text:
        return text or ""
    if "@" in text:
        text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    for r in _rules():
        text = r.mask(text)
    return text


def mask_secret(text: str | None) -> str:
    """Every digit (Arabic, full-width or spoken Chinese) as '*': for answers to verification questions (the
    phone's last four digits are a credential, kept out of records and agents' screens)."""
    return _secret_digits().sub("*", text or "")


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
