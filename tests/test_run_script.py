"""./run, the one entry point for a fresh machine: every external program the tests start comes from a Debian
package it installs, its install never stops on a debconf question, and a second run installs nothing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "run"

# programs that tests (or tests/sip/peers.py, tests/browser) start by name
TEST_PROGRAMS = ["sipp", "baresip", "tshark", "sox", "chromium", "espeak-ng", "nginx", "turnserver", "kamailio", "openssl"]


def _apt_lists() -> dict[str, list[str]]:
    text = RUN.read_text()
    return {m[1]: m[2].split() for m in re.finditer(r"^(APT_[A-Z]+)=\(([^)]*)\)", text, re.M)}


def _package_of(program: str) -> str:
    path = shutil.which(program)
    assert path, f"{program} is not installed; `./run setup` installs it"
    real = os.path.realpath(path)
    for candidate in dict.fromkeys([path, real]):
        r = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":", 1)[0].strip()
    pytest.fail(f"no Debian package owns {path} ({real})")


@pytest.mark.parametrize("program", TEST_PROGRAMS)
def test_every_program_the_tests_start_is_installed_by_run(program):
    lists = _apt_lists()
    assert set(lists) >= {"APT_RUNTIME", "APT_TEST"}, lists
    wanted = set(lists["APT_RUNTIME"]) | set(lists["APT_TEST"])
    pkg = _package_of(program)
    # a listed package or one it depends on directly (baresip -> baresip-core)
    deps = subprocess.run(["dpkg-query", "-W", "-f=${Depends}\n", *sorted(wanted)], capture_output=True, text=True).stdout
    direct = {d.strip().split()[0] for d in re.split(r"[,|]", deps) if d.strip()}
    assert pkg in wanted or pkg in direct, f"{program} comes from Debian package {pkg!r}, which ./run does not install ({sorted(wanted)})"


def test_tshark_install_is_preseeded_before_apt_get_install():
    body = RUN.read_text()
    fn = body[body.index("apt_install() {"):]
    fn = fn[: fn.index("\n}\n")]
    preseed = fn.find("wireshark-common wireshark-common/install-setuid boolean false")
    install = fn.find("apt-get install")
    assert preseed != -1 and "debconf-set-selections" in fn[preseed:install], fn
    assert preseed < install, "the debconf answer must be given before apt-get install"
    assert "DEBIAN_FRONTEND=noninteractive" in fn[install - 60:install]


@pytest.mark.realtime  # a wall-clock bound (< 15 s)
def test_second_setup_installs_nothing_and_is_fast():
    t0 = time.monotonic()
    r = subprocess.run(["bash", str(RUN), "setup"], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert "[setup] installing" not in r.stderr, r.stderr
    assert took < 15, f"./run setup took {took:.1f} s with everything installed"
