"""`ivr bench tts` runs end to end and writes its section of docs/benchmarks.md (figures are not asserted)."""

from __future__ import annotations

from ivr.cli import main


def test_bench_tts_writes_its_section(tmp_path, monkeypatch, capsys):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n<!-- bench:asr -->\n## ASR\nkept\n<!-- /bench:asr -->\n")
    monkeypatch.setenv("IVR_BENCH_DOC", str(doc))
    assert main(["bench", "tts", "--count", "12", "--concurrency", "2"]) == 0
    text = doc.read_text()
    assert "<!-- bench:tts -->" in text and "first audio when streaming" in text and "real-time factor" in text
    assert "## ASR\nkept" in text  # other sections untouched
    assert "0 silent/failed" in text
    main(["bench", "tts", "--count", "12", "--concurrency", "2"])
    assert doc.read_text().count("<!-- bench:tts -->") == 1  # re-running replaces, not appends


def test_bench_tts_bad_rate_is_one_line(capsys):
    assert main(["bench", "tts", "--rate", "1234", "--no-write"]) == 2
    err = capsys.readouterr().err
    assert "sample rate" in err and len(err.strip().splitlines()) == 1
