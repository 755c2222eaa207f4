"""Small numeric report helpers shared by benchmarks, fixture replay and statistics: percentiles and Markdown
tables (a neutral module: it imports nothing of ivr)."""

from __future__ import annotations

import numpy as np


def percentiles(values: list[float], ps: tuple[int, ...] = (50, 90, 95, 99)) -> dict[str, float]:
    """{'p50': .., 'p90': .., ..., 'max': .., 'n': ..} (empty input gives NaNs)."""
    if not values:
        return {**{f"p{p}": float("nan") for p in ps}, "max": float("nan"), "n": 0}
    a = np.asarray(values, dtype=float)
    out = {f"p{p}": float(np.percentile(a, p)) for p in ps}
    out["max"] = float(a.max())
    out["n"] = len(values)
    return out


def markdown_table(headers: list[str], rows: list[list[object]]) -> str:
    """A GitHub-style table; floats with two decimals."""

    def fmt(v: object) -> str:
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)
