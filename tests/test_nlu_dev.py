"""Intent accuracy on the real JDDC dev set (../shared, research-only: read here, never copied)."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.conftest import ROOT, shared_path


def _eval_module():
    spec = importlib.util.spec_from_file_location("eval_nlu", ROOT / "scripts" / "eval_nlu.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.shared
def test_dev_set_accuracy_on_clear_rows():
    dev = shared_path("data", "jddc_dev.tsv")
    ev_mod = _eval_module()
    ev = ev_mod.evaluate(ev_mod.read_dev(dev), repeat=1)
    print(f"\nJDDC dev clear rows: {ev.correct}/{ev.total} = {ev.accuracy:.1%} "
          f"(without context {ev.no_context_correct}/{ev.total})")
    print(ev_mod.per_intent_table(ev))
    assert ev.total >= 100
    # The target (docs/nlu.md has the measured figure).
    assert ev.accuracy >= 0.90
