"""`ivr bench calls --asr real --soak SECONDS`: the memory soak with talking callers and real Vosk writes RSS per
call (beyond the shared model) and the recognisers alive into its own section of docs/benchmarks.md, leaving the
other sections alone (figures not asserted: they are the record)."""

from __future__ import annotations

import pytest

from ivr.cli import main

pytestmark = pytest.mark.timeout(400)


def test_soak_writes_rss_per_call_to_its_own_section(tmp_path, monkeypatch, tmp_path_factory, capsys):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n<!-- bench:calls-asr -->\n## calls\nkept\n<!-- /bench:calls-asr -->\n")
    monkeypatch.setenv("IVR_BENCH_DOC", str(doc))
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path_factory.mktemp("soak-data")))
    # The level warms one recogniser per caller and keeps a spare per open call (asr_spares_per_call); no pool on
    # top (the default 2 warmed two more, ~4 CPU-s, that two callers never need).
    monkeypatch.setenv("IVR_ASR_POOL_SIZE", "0")
    assert main(["bench", "calls", "--asr", "real", "--levels", "2", "--soak", "8"]) == 0
    text = doc.read_text()
    assert "## calls\nkept" in text  # the other section untouched
    section = text.split("<!-- bench:calls-asr-soak -->", 1)[1].split("<!-- /bench:calls-asr-soak -->", 1)[0]
    assert "keeps a call up for 8 s" in section and "RSS per call MB" in section
    header = next(line for line in section.splitlines() if line.startswith("| calls |"))
    row = next(line for line in section.splitlines() if line.startswith("| 2 |"))
    cells = dict(zip([c.strip() for c in header.split("|")], [c.strip() for c in row.split("|")], strict=True))
    assert int(cells["utterances"]) >= 2  # both callers spoke
    assert float(cells["RSS per call MB"]) > 0  # recognisers and sessions cost something beyond the model
    assert 1 <= int(cells["recognisers max"]) <= 2 + 2 + 1  # per utterance, the spares, one being replaced
    assert "RSS after the model" in capsys.readouterr().out
