"""`ivr bench calls --asr real` runs end to end: talking callers with real Vosk through real sessions, one row per
level with the caller-heard figures, written into its own section of docs/benchmarks.md (figures not asserted)."""

from __future__ import annotations

import pytest

from ivr.cli import main

pytestmark = pytest.mark.timeout(300)


def test_bench_calls_real_asr_writes_its_section(tmp_path, monkeypatch, capsys, tmp_path_factory):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n<!-- bench:asr -->\n## ASR\nkept\n<!-- /bench:asr -->\n")
    monkeypatch.setenv("IVR_BENCH_DOC", str(doc))
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path_factory.mktemp("bench-data")))
    # The level warms one recogniser for its caller; no pool on top (the default 2, and a spare per open call beyond
    # it, warmed two more, ~4 CPU-s, that one caller taking turns with the bot never uses).
    monkeypatch.setenv("IVR_ASR_POOL_SIZE", "0")
    assert main(["bench", "calls", "--asr", "real", "--levels", "1", "--seconds", "6"]) == 0
    text = doc.read_text()
    assert "<!-- bench:calls-asr -->" in text and "## ASR\nkept" in text
    for col in ("heard p50 ms", "heard p95 ms", "lost utterances", "no-input while speaking", "stalls",
                "RSS per call MB", "holds targets"):
        assert col in text
    row = next(line for line in text.splitlines() if line.startswith("| 1 |"))
    assert int(row.split("|")[2]) >= 1  # the caller said at least one utterance
    assert "Capacity:" in text
