"""Expansion of compact training patterns: "(a|b|c)" picks one, "(a|b)?" may be empty."""

from __future__ import annotations

import itertools
import random
import re

_GROUP = re.compile(r"\(([^()]*)\)(\?)?")


class PatternError(ValueError):
    """A training pattern is malformed."""


def expand(pattern: str, limit: int = 8, seed: int = 0) -> list[str]:
    """All variants of ``pattern`` (deterministically sampled down to ``limit``), spaces collapsed."""
    if pattern.count("(") != pattern.count(")"):
        raise PatternError(f"unbalanced parentheses in training pattern {pattern!r}")
    pieces: list[list[str]] = []
    pos = 0
    for m in _GROUP.finditer(pattern):
        pieces.append([pattern[pos:m.start()]])
        options = m.group(1).split("|")
        if m.group(2):
            options.append("")
        pieces.append(options)
        pos = m.end()
    pieces.append([pattern[pos:]])
    total = 1
    for p in pieces:
        total *= len(p)
    rng = random.Random(f"{seed}:{pattern}")
    if total <= limit:
        combos = list(itertools.product(*pieces))
    else:
        seen: set[tuple[str, ...]] = set()
        # Always include the fullest variant (first non-empty option of each group), then random ones.
        combos = [tuple(next((o for o in p if o), "") for p in pieces)]
        seen.add(combos[0])
        tries = 0
        while len(combos) < limit and tries < limit * 20:
            c = tuple(rng.choice(p) for p in pieces)
            tries += 1
            if c not in seen:
                seen.add(c)
                combos.append(c)
    out = []
    for c in combos:
        text = re.sub(r"\s+", " ", "".join(c)).strip()
        if text:
            out.append(text)
    return list(dict.fromkeys(out))
