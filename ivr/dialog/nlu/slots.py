"""Slot extraction by lexicon and rules: order_id, phone_tail, phone, product, date, quantity, return_reason, rating.

All words come from the language pack (``lexicon.yaml`` ``slots:``); this module only applies them.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from ivr.lang import LanguagePack

DIGIT_EXPECTATIONS = frozenset({"digits", "order_id", "phone_tail", "phone"})


class SlotExtractor:
    """Finds slot values in normalised text, helped by what the dialogue expects next."""

    def __init__(self, pack: LanguagePack):
        self.pack = pack
        cfg = pack.lexicon.get("slots", {}) or {}
        self.order_min = int(cfg.get("order_min_digits", 6))
        self.tail_cues = [str(c) for c in cfg.get("phone_tail_cues", [])]
        self.order_cues = [str(c) for c in cfg.get("order_cues", [])]
        self.products = sorted({str(p) for p in cfg.get("products", [])}, key=len, reverse=True)
        self.product_not_before = [str(x) for x in cfg.get("product_exclude_before", [])]
        self.rating_words = sorted(
            ((str(w), int(score)) for score, words in (cfg.get("rating_words") or {}).items() for w in words),
            key=lambda kv: -len(kv[0]),
        )
        units = "|".join(map(re.escape, cfg.get("rating_units", []))) or "(?!)"
        num = "0-9" + "".join(sorted(set("".join(str(w) for w in cfg.get("number_chars", [])))))
        not_after = "|".join(map(re.escape, cfg.get("rating_unit_exclude_after", []))) or "(?!)"
        self._rating_re = re.compile(f"(?<![{num}])([{num}])({units})(?!{not_after})")
        measures = "|".join(map(re.escape, sorted(cfg.get("measure_words", []), key=len, reverse=True))) or "(?!)"
        exclude = "|".join(map(re.escape, cfg.get("quantity_exclude_after", []))) or "(?!)"
        self._qty_re = re.compile(f"([{num}]+)(?:{measures})(?!{exclude})")
        self.reasons = sorted(
            ((str(w), code) for code, spec in (cfg.get("return_reasons") or {}).items() for w in spec.get("words", [])),
            key=lambda kv: -len(kv[0]),
        )
        self.reason_labels = {code: spec.get("label", code) for code, spec in (cfg.get("return_reasons") or {}).items()}

    def add_products(self, names: list[str]) -> None:
        """Teach product names from the shop catalogue (longest names match first)."""
        self.products = sorted(set(self.products) | {n.lower() for n in names if n}, key=len, reverse=True)

    def extract(self, norm: str, expected: str | None = None, today: date | None = None,
                hits: list[str] | None = None) -> dict[str, Any]:
        """Slots found in normalised text; ``hits`` collects a human-readable trace for explanations."""
        trace = hits if hits is not None else []
        compact = norm.replace(" ", "")
        slots: dict[str, Any] = {}
        self._digits(compact, expected, slots, trace)
        rating = self._rating(compact, expected)
        if rating is not None:
            slots["rating"] = rating
            trace.append(f"rating={rating}")
        d = self.pack.parse_date(compact, today)
        if d is not None:
            slots["date"] = d.isoformat()
            trace.append(f"date={d.isoformat()}")
        q = self._quantity(compact)
        if q is not None and "rating" not in slots:
            slots["quantity"] = q
            trace.append(f"quantity={q}")
        for p in self.products:
            k = compact.find(p)
            if k >= 0 and not any(compact.startswith(x, k + len(p)) for x in self.product_not_before):
                slots["product"] = p
                trace.append(f"product={p}")
                break
        for word, code in self.reasons:
            if word in compact:
                slots["return_reason"] = code
                trace.append(f"return_reason={code} ({word})")
                break
        return slots

    # --- pieces ---------------------------------------------------------------------------------------
    def _digits(self, compact: str, expected: str | None, slots: dict[str, Any], trace: list[str]) -> None:
        spans = self.pack.digit_spans(compact)
        if not spans:
            return
        longest = max(spans, key=lambda s: len(s.digits))
        for s in spans:
            before = compact[max(0, s.start - 8):s.start]
            is_tail_cue = any(c in before for c in self.tail_cues)
            if len(s.digits) == 4 and (is_tail_cue or expected == "phone_tail"):
                slots.setdefault("phone_tail", s.digits)
                trace.append(f"phone_tail={s.digits}" + (" (corrected)" if s.corrected else ""))
            elif len(s.digits) == 11 and s.digits.startswith("1") and expected != "order_id" and \
                    not any(c in before for c in self.order_cues):
                slots.setdefault("phone", s.digits)
                if expected == "phone_tail":
                    slots.setdefault("phone_tail", s.digits[-4:])
                trace.append(f"phone={s.digits[:3]}****{s.digits[-4:]}")
            elif len(s.digits) >= self.order_min or (expected == "order_id" and s is longest and len(s.digits) >= 3):
                slots.setdefault("order_id", s.digits)
                trace.append(f"order_id={s.digits}" + (" (corrected)" if s.corrected else ""))
        if expected in DIGIT_EXPECTATIONS:
            slots["digits"] = "".join(s.digits for s in spans if len(s.digits) > 1) or longest.digits

    def _rating(self, compact: str, expected: str | None) -> int | None:
        m = self._rating_re.search(compact)
        if m:
            v = self.pack.parse_number(m.group(1))
            if v is not None and 1 <= v <= 5:
                return v
        if expected != "rating":
            return None
        for word, score in self.rating_words:
            if word in compact:
                return score
        spans = self.pack.digit_spans(compact)
        if len(spans) == 1 and len(spans[0].digits) == 1 and 1 <= int(spans[0].digits) <= 5:
            return int(spans[0].digits)
        v = self.pack.parse_number(compact)
        return v if v is not None and 1 <= v <= 5 else None

    def _quantity(self, compact: str) -> int | None:
        for m in self._qty_re.finditer(compact):
            v = self.pack.parse_number(m.group(1))
            if v is not None and 0 < v < 1000:
                return v
        return None
