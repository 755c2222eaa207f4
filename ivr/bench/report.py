"""Shared helpers for benchmarks: machine description and docs/benchmarks.md sections (percentiles and tables
come from the neutral :mod:`ivr.tables`, which replay and statistics use too)."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from ivr.tables import markdown_table, percentiles

__all__ = ["markdown_table", "machine_description", "percentiles", "write_section"]  # tables: ivr/tables.py

DEFAULT_DOC = Path("docs/benchmarks.md")


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
