"""Product and policy knowledge base that operators edit without code (``<pack>/kb/*.yaml`` or ``*.md``, and
the shop's own ``<data_dir>/custom/kb/`` files: an entry with a pack entry's id replaces it; see ivr.lang.custom).

YAML files hold ``entries: [{id, keywords, answer, dtmf}]``. Markdown files hold one entry per ``## heading``:
the heading is the id, a line ``keywords: a, b, c`` lists the keywords, the rest of the section is the answer.
Lookup scores each entry by the keywords found in the caller's text (longer keywords weigh more).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KbEntry:
    id: str
    keywords: tuple[str, ...]
    answer: str
    dtmf: str = ""


def _from_yaml(path: Path) -> list[KbEntry]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = data.get("entries", []) if isinstance(data, dict) else []
    return [KbEntry(str(e["id"]), tuple(str(k) for k in e.get("keywords", [])), str(e["answer"]).strip(),
                    str(e.get("dtmf", "") or "")) for e in entries if isinstance(e, dict) and e.get("answer")]


def _from_markdown(path: Path) -> list[KbEntry]:
    out: list[KbEntry] = []
    for block in re.split(r"^## +", path.read_text(encoding="utf-8"), flags=re.M)[1:]:
        head, _, body = block.partition("\n")
        keywords: tuple[str, ...] = ()
        dtmf = ""
        lines = []
        for line in body.splitlines():
            m = re.match(r"^\s*(keywords|dtmf)\s*:\s*(.*)$", line, flags=re.I)
            if m and m.group(1).lower() == "keywords":
                keywords = tuple(k.strip() for k in re.split(r"[,，、]", m.group(2)) if k.strip())
            elif m:
                dtmf = m.group(2).strip()
            elif line.strip():
                lines.append(line.strip())
        if lines:
            out.append(KbEntry(head.strip(), keywords, "".join(lines), dtmf))
    return out


def check_files(paths: list[Path]) -> list[str]:
    """Problems of knowledge-base files (the shop's ``custom/kb/``), one line each."""
    errors: list[str] = []
    for p in paths:
        try:
            entries = _from_markdown(p) if p.suffix == ".md" else _from_yaml(p)
        except (yaml.YAMLError, KeyError, TypeError, AttributeError, OSError, UnicodeDecodeError) as e:
            errors.append(f"{p}: bad knowledge-base file ({type(e).__name__}: {' '.join(str(e).split())[:200]})")
            continue
        if not entries:
            errors.append(f"{p}: no entries (YAML needs `entries: [{{id, keywords, answer}}]`)")
        errors += [f"{p}: entry {e.id!r} has no keywords" for e in entries if not e.keywords]
    return errors


class KnowledgeBase:
    """All entries of a pack's ``kb/`` folder (``options.yaml`` excluded), re-read when a file changes."""

    def __init__(self, kb_dir: Path):
        self.dir = kb_dir
        self._stamp: tuple = ()
        self._entries: list[KbEntry] = []

    def _files(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        return sorted(p for p in self.dir.iterdir()
                      if p.suffix in (".yaml", ".yml", ".md") and p.stem != "options")

    def _pack(self):
        """The language pack this kb/ folder belongs to (for the shop's overrides), or None."""
        if not (self.dir.parent / "pack.yaml").is_file():
            return None
        from ivr.lang import get_pack

        return get_pack(self.dir.parent.name.replace("_", "-"))

    @property
    def entries(self) -> list[KbEntry]:
        """The pack's entries, then ``<data_dir>/custom/kb/`` ones (same id replaces), shop name applied."""
        from ivr.lang.custom import kb_files, rename_shop, shop_stamp

        pack = self._pack()
        custom = kb_files() if pack is not None else []
        files = self._files() + custom
        stamp = (tuple((str(p), p.stat().st_mtime_ns) for p in files), shop_stamp())
        if stamp != self._stamp:
            by_id: dict[str, KbEntry] = {}
            try:
                for p in files:
                    for e in _from_markdown(p) if p.suffix == ".md" else _from_yaml(p):
                        by_id.pop(e.id, None)
                        by_id[e.id] = e if pack is None else replace(e, answer=rename_shop(e.answer, pack))
            except (yaml.YAMLError, KeyError, TypeError, AttributeError) as e:
                if not custom or not self._stamp:
                    raise
                log.error("knowledge base not reloaded, keeping the previous answers: %s", e)
                return self._entries
            self._entries, self._stamp = list(by_id.values()), stamp
        return self._entries

    def lookup(self, text: str) -> KbEntry | None:
        """The best entry for the caller's text, or None when no keyword matches."""
        compact = text.replace(" ", "")
        best: tuple[int, KbEntry] | None = None
        for e in self.entries:
            score = sum(len(k) for k in e.keywords if k and k in compact)
            if score and (best is None or score > best[0]):
                best = (score, e)
        return best[1] if best else None

    def by_dtmf(self, key: str) -> KbEntry | None:
        return next((e for e in self.entries if e.dtmf and e.dtmf == key.rstrip("#")), None)
