"""Shared test fixtures. Tests use real parts (Vosk, espeak-ng, webrtcvad, SQLite, Chromium, sipp)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("IVR_SHARED_DIR", ROOT.parent / "shared"))
# The suite's shop is the demo shop, also for module-scoped fixtures that run before _isolated_settings;
# tests of the default (no demo data unless asked) unset it with monkeypatch.
os.environ.setdefault("IVR_DEMO_DATA", "1")


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch):
    """Every test gets its own data dir and fresh settings (no leaking state between tests)."""
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("IVR_CONFIG", raising=False)
    monkeypatch.setenv("IVR_DEMO_DATA", "1")  # the suite's shop is the demo shop; tests of the default unset it
    from ivr.config import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def wait_healthy(url: str, proc, log, timeout_s: float = 120) -> None:
    """Poll ``url``/health until it answers 200 while ``proc`` (a started ``ivr serve``) lives; fail with
    ``log()`` (its stderr) when it died, or after ``timeout_s``."""
    import time

    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, log()
        assert time.monotonic() < deadline, f"{url} did not become healthy within {timeout_s:.0f} s"
        time.sleep(0.3)


def shared_path(*parts: str) -> Path:
    """Path under ../shared, or a 'not run' skip with the reason when the folder is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"NOT RUN: needs ../shared data ({p} absent); the suite itself does not depend on it")
    return p


def pytest_collection_modifyitems(config, items):
    """On pytest-xdist workers (./run test): files with a ``slow`` test first, so the long files start early and
    short ones fill in around them (``--dist loadfile --no-loadscope-reorder`` keeps each file on one worker, in
    this order). The order inside a file is kept."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        slow = {item.path for item in items if item.get_closest_marker("slow")}
        items.sort(key=lambda item: item.path not in slow)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """With $IVR_TEST_CPU set: one line per test (CPU seconds of this process and its waited-for children, wall
    seconds, node id, when it ended (epoch seconds), the xdist worker) appended to that file, to find where the
    suite's CPU goes (the 2 cores are its limit) and when cores sit idle."""
    out = os.environ.get("IVR_TEST_CPU")
    if not out:
        yield
        return
    import resource
    import time

    def cpu() -> float:
        a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime

    c0, t0 = cpu(), time.monotonic()
    yield
    with open(out, "a", encoding="utf-8") as f:
        f.write(f"{cpu() - c0:.2f}\t{time.monotonic() - t0:.2f}\t{item.nodeid}\t{time.time():.1f}\t"
                f"{os.environ.get('PYTEST_XDIST_WORKER', '-')}\n")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """./run test runs pytest three times (the parallel part and beside it the ``live`` tests, then the
    ``realtime`` tests alone) and sums them up: each run leaves its counts (passed, failed, skipped, ...) as JSON in
    $IVR_TEST_STATS."""
    out = os.environ.get("IVR_TEST_STATS")
    if out and not hasattr(config, "workerinput"):
        counts = {k: len(v) for k, v in terminalreporter.stats.items() if k}
        Path(out).write_text(json.dumps(counts), encoding="utf-8")
