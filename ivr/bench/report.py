"""Shared helpers for benchmarks: percentiles, machine description, and docs/benchmarks.md sections."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

DEFAULT_DOC = Path("docs/benchmarks.md")


def percentiles(values: list[float], ps: tuple[int, ...] = (50, 90, 95, 99)) -> dict[str, float]:
    """{'p50': .., 'p90': .., ..., 'max': .., 'n': ..} (empty input gives NaNs)."""
    if not values:
        return {**{f"p{p}": float("nan") for p in ps}, "max": float("nan"), "n": 0}
    a = np.asarray(values, dtype=float)
    out = {f"p{p}": float(np.percentile(a, p)) for p in ps}
    out["max"] = float(a.max())
    out["n"] = len(values)
    return out


def machine_description() -> str:
    """One line: CPU model, cores, memory, OS, Python."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    osname = platform.platform()
    try:
        osname = subprocess.run(["lsb_release", "-ds"], capture_output=True, text=True, timeout=2).stdout.strip() or osname
    except (OSError, subprocess.SubprocessError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}, {osname}, Python {platform.python_version()}"


def markdown_table(headers: list[str], rows: list[list[object]]) -> str:
    def fmt(v: object) -> str:
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def write_section(name: str, title: str, body: str, doc: Path | None = None) -> Path:
    """Replace (or append) the section ``name`` of docs/benchmarks.md, stamped with date and machine."""
    doc = doc or Path(os.environ.get("IVR_BENCH_DOC", DEFAULT_DOC))
    doc.parent.mkdir(parents=True, exist_ok=True)
    text = doc.read_text(encoding="utf-8") if doc.exists() else (
        "# Benchmarks\n\nWritten by `ivr bench ...` (and `ivr replay --concurrency`). Each section says when and on what "
        "machine it was measured. Tests never assert wall-clock times; these figures are the record.\n"
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"<!-- bench:{name} -->\n## {title}\n\n_Measured {stamp} on {machine_description()}._\n\n{body.strip()}\n"
        f"<!-- /bench:{name} -->"
    )
    pat = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
    text = pat.sub(lambda _m: section, text) if pat.search(text) else text.rstrip() + "\n\n" + section + "\n"
    doc.write_text(text, encoding="utf-8")
    return doc
