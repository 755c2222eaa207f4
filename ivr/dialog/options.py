"""Choices the dialogue offers (return reasons, pickup slots, sub-menus), loaded from the language pack's data.

``kb/options.yaml`` maps a choice set name to options ``{code, dtmf, keys}``; the spoken label of an option is the
prompt ``<prefix>.<code>``. Matching is by keypad digit or by a keyword occurring in the caller's normalised text
(the longest keyword wins, so 'tomorrow afternoon' beats 'afternoon').
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml


@dataclass(frozen=True, slots=True)
class Option:
    code: str
    dtmf: str
    keys: tuple[str, ...]


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> dict[str, list[Option] | list[str]]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    out: dict[str, list] = {}
    for name, items in data.items():
        if items and isinstance(items[0], dict):
            out[name] = [Option(str(i["code"]), str(i.get("dtmf", "")), tuple(str(k) for k in i.get("keys", [])))
                         for i in items]
        else:
            out[name] = [str(i) for i in items or []]
    return out


class Options:
    """The option sets of one language pack (re-read when the file changes)."""

    def __init__(self, pack_dir: Path):
        self.path = pack_dir / "kb" / "options.yaml"

    def _data(self) -> dict:
        if not self.path.is_file():
            return {}
        return _load(str(self.path), self.path.stat().st_mtime)

    def get(self, name: str) -> list[Option]:
        return [o for o in self._data().get(name, []) if isinstance(o, Option)]

    def words(self, name: str) -> list[str]:
        return [w for w in self._data().get(name, []) if isinstance(w, str)]

    def match(self, name: str, text: str = "", dtmf: str = "") -> str | None:
        """The code of the option picked by a keypad digit or named in the text, or None."""
        options = self.get(name)
        if dtmf:
            key = dtmf.rstrip("#")
            return next((o.code for o in options if o.dtmf and o.dtmf == key), None)
        compact = text.replace(" ", "")
        best: tuple[int, str] | None = None
        for o in options:
            for k in o.keys:
                if k and k in compact and (best is None or len(k) > best[0]):
                    best = (len(k), o.code)
        return best[1] if best else None
