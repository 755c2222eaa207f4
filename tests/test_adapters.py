"""Private attributes of aiortc, aiortp and aiosipua are used only in ivr/telephony/adapters/ (one module per
library), and each adapter's check() fails loudly when the installed library no longer has them (issue 15)."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from ivr.telephony.adapters import PrivateApiChanged, aiortc_private, aiortp_private, aiosipua_private

ROOT = Path(__file__).resolve().parent.parent
ADAPTERS = {"aiortc": aiortc_private, "aiortp": aiortp_private, "aiosipua": aiosipua_private}
# the private names the adapters wrap: nobody else may spell them
PRIVATE = re.compile(r"\._(calls|answered|send_response|stop_retransmissions|codecs|dtmf_receiver|dispatch_dtmf|"
                     r"remote_addr|remote_rtcp_addr|rtp_transport|rtcp_transport|sender|dtmf_payload_type|"
                     r"current_timestamp|end_seen|current_event)\b|_RTCRtpReceiver__jitter_buffer")


def _pins() -> dict[str, Requirement]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    reqs = [Requirement(d) for d in deps]
    return {r.name: r for r in reqs if r.name in ADAPTERS}


def test_pyproject_pins_each_library_to_the_versions_its_adapter_knows():
    pins = _pins()
    assert set(pins) == set(ADAPTERS)
    for name, mod in ADAPTERS.items():
        assert str(pins[name].specifier) == str(Requirement(f"{name}{mod.KNOWN_GOOD}").specifier), name
        assert pins[name].specifier.contains(version(name)), f"installed {name} {version(name)} is not {mod.KNOWN_GOOD}"


async def test_every_adapter_finds_what_it_uses_in_the_installed_library():
    await aiortc_private.check()
    await aiortp_private.check()
    aiosipua_private.check()


async def test_a_changed_library_fails_the_check(monkeypatch):
    from aiortc.jitterbuffer import JitterBuffer
    from aiosipua import SipUAS

    monkeypatch.delattr(SipUAS, "_handle_invite")
    with pytest.raises(PrivateApiChanged, match="_handle_invite"):
        aiosipua_private.check()
    monkeypatch.setattr(JitterBuffer, "__init__", lambda self, *a, **k: None)  # no _prefetch any more
    with pytest.raises(PrivateApiChanged, match="_prefetch"):
        await aiortc_private.check()


def test_private_attributes_only_in_the_adapters():
    hits = []
    for path in sorted((ROOT / "ivr").rglob("*.py")):
        if path.parent.name == "adapters":
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#")[0]
            for m in PRIVATE.finditer(code):
                if not code[: m.start()].rstrip().endswith("self"):  # our own attributes of the same name
                    hits.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not hits, "private library attributes outside ivr/telephony/adapters/:\n" + "\n".join(hits)
