"""Product and policy knowledge base that operators edit without code (``<pack>/kb/*.yaml`` or ``*.md``).

YAML files hold ``entries: [{id, keywords, answer, dtmf}]``. Markdown files hold one entry per ``## heading``:
the heading is the id, a line ``keywords: a, b, c`` lists the keywords, the rest of the section is the answer.
Lookup scores each entry by the keywords found in the caller's text (longer keywords weigh more).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml


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

    @property
    def entries(self) -> list[KbEntry]:
        files = self._files()
        stamp = tuple((str(p), p.stat().st_mtime) for p in files)
        if stamp != self._stamp:
            entries: list[KbEntry] = []
            for p in files:
                entries.extend(_from_markdown(p) if p.suffix == ".md" else _from_yaml(p))
            self._entries, self._stamp = entries, stamp
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
