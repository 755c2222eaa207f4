"""Every scripted conversation in tests/dialog_scripts/ runs against the real dialogue engine, the real NLU and a
real seeded SQLite shop (no mocks); each expectation names the turn and the reason when it fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.replay.script import load_script, run_script
from ivr.services.shop import SqlShop, seed_demo

SCRIPTS = sorted((Path(__file__).parent / "dialog_scripts").glob("*.yaml"))


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> SqlShop:
    url = f"sqlite:///{tmp_path_factory.mktemp('shop') / 'shop.db'}"
    seed_demo(url)
    return SqlShop(url)


def test_there_are_scripts_for_every_flow() -> None:
    from ivr.dialog.flows import FLOWS

    said = " ".join(p.read_text(encoding="utf-8") for p in SCRIPTS)
    for intent in FLOWS:
        assert f"intent: {intent}" in said, f"no scripted conversation expects intent {intent}"


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_script(path: Path, shop: SqlShop) -> None:
    result = run_script(load_script(path), shop)
    assert result.ok, "\n".join([f"{path.name}: {result.name}", *result.failures])
