"""The shop's own words: ``<data_dir>/custom/`` overrides the language pack without touching the package.

    custom/shop.yaml          name: 张记百货   (replaces the pack's shop name in every prompt and KB answer)
    custom/prompts.yaml       prompt id -> text (or a list of variants); ids and {fields} as in the pack
    custom/kb/*.yaml, *.md    knowledge-base entries (same format as the pack's kb/); same id = replaced
    custom/nlu/train.yaml     intents: {intent: [phrasings]} added to the pack's training phrasings
    custom/prompts/<id>.wav   recorded prompts (when the ``prompts_dir`` setting is empty)

``ivr serve`` validates the folder at start-up (:func:`check`; errors name the file and what is wrong). Prompts,
shop name and KB answers are re-read when a file's modification time changes (checked at use: the next call
hears the change); the training phrasings and recordings take effect on SIGHUP (``kill -HUP``), or a restart.
A broken edit made while the service runs is logged and the last good version stays in use.
"""

from __future__ import annotations

import logging
import string
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

_explicit: Path | None = None


def set_custom_dir(path: Path | None) -> None:
    """Use ``path`` instead of ``<data_dir>/custom`` (None: back to the default)."""
    global _explicit
    _explicit = Path(path) if path is not None else None
    _state.clear()


def custom_dir() -> Path | None:
    """The override folder: set explicitly, else ``<data_dir>/custom`` of the current settings."""
    if _explicit is not None:
        return _explicit
    try:
        from ivr.config import get_settings

        return Path(get_settings().data_dir) / "custom"
    except Exception:  # settings broken: the pack alone (the CLI reports the settings error)
        return None


def _stamp(paths: list[Path]) -> tuple:
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append((str(p), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(p), 0, -1))
    return tuple(out)


def _load(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"{path}:{where} not valid YAML ({getattr(e, 'problem', None) or e})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read ({e})") from None


def _fields(template: str) -> set[str]:
    return {f for _lit, f, _spec, _conv in string.Formatter().parse(template) if f}


# --- validation ----------------------------------------------------------------------------------------
def check(pack: Any, folder: Path | None = None, *, audio: bool = True) -> list[str]:
    """Problems of the override folder for ``pack`` (empty list: fine, or no folder). The KB files are checked by
    ``ivr.dialog.kb.check_files(kb_files())``, which knows their format."""
    folder = folder if folder is not None else custom_dir()
    if folder is None or not folder.is_dir():
        return []
    errors: list[str] = []
    shop = folder / "shop.yaml"
    if shop.is_file():
        try:
            data = _load(shop)
            name = data.get("name") if isinstance(data, dict) else None
            if not isinstance(name, str) or not name.strip() or len(name) > 40:
                errors.append(f"{shop}: expected `name: 店名` (1 to 40 characters)")
        except ValueError as e:
            errors.append(str(e))
    prompts = folder / "prompts.yaml"
    if prompts.is_file():
        errors += _check_prompts(prompts, pack)
    train = folder / "nlu" / "train.yaml"
    if train.is_file():
        errors += _check_train(train, pack)
    recs = folder / "prompts"
    if recs.is_dir() and audio:
        from ivr.audio.files import AudioFileError, read_audio

        known = set(pack.base_prompts)
        for p in sorted(recs.iterdir()):
            if p.suffix not in (".wav", ".flac"):
                continue
            if p.stem not in known:
                errors.append(f"{p}: no prompt called {p.stem!r} (file names are prompt ids)")
                continue
            try:
                read_audio(p)
            except (AudioFileError, OSError) as e:
                errors.append(f"{p}: not a readable recording ({e})")
    return errors


def _check_prompts(path: Path, pack: Any) -> list[str]:
    try:
        data = _load(path)
    except ValueError as e:
        return [str(e)]
    if not isinstance(data, dict):
        return [f"{path}: expected a mapping prompt_id -> text"]
    errors = []
    base = pack.base_prompts
    for pid, value in data.items():
        if pid not in base:
            close = [k for k in base if k.split(".")[0] == str(pid).split(".")[0]][:3]
            errors.append(f"{path}: unknown prompt id {pid!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
            continue
        texts = value if isinstance(value, list) else [value]
        if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            errors.append(f"{path}: prompt {pid!r} must be text or a list of texts")
            continue
        orig = base[pid]
        allowed = set().union(*(_fields(str(t)) for t in (orig if isinstance(orig, list) else [orig])))
        for t in texts:
            try:
                extra = _fields(t) - allowed
            except ValueError as e:
                errors.append(f"{path}: prompt {pid!r}: bad template ({e})")
                continue
            if extra:
                errors.append(f"{path}: prompt {pid!r} uses {', '.join('{' + f + '}' for f in sorted(extra))}; "
                              f"it may only use {', '.join('{' + f + '}' for f in sorted(allowed)) or 'no fields'}")
    return errors


def _check_train(path: Path, pack: Any) -> list[str]:
    try:
        data = _load(path)
    except ValueError as e:
        return [str(e)]
    intents = data.get("intents") if isinstance(data, dict) else None
    if not isinstance(intents, dict):
        return [f"{path}: expected `intents: {{intent: [phrasings]}}`"]
    known = set((_load(pack.base_train_path) or {}).get("intents", {}))
    errors = []
    for intent, phrasings in intents.items():
        if intent not in known:
            errors.append(f"{path}: unknown intent {intent!r} (known: {', '.join(sorted(known))})")
        elif not isinstance(phrasings, list) or not all(isinstance(p, str) and p.strip() for p in phrasings):
            errors.append(f"{path}: intent {intent!r} needs a list of phrasings")
    return errors


# --- overlay ---------------------------------------------------------------------------------------------
_state: dict[str, Any] = {}


def _current(pack: Any) -> tuple[dict, str]:
    """(prompt overrides, shop name) of the folder, re-read when its files change; last good kept on errors."""
    folder = custom_dir()
    if folder is None:
        return {}, ""
    stamp = (str(folder), _stamp([folder / "shop.yaml", folder / "prompts.yaml"]))
    key = f"overlay:{pack.code}"
    hit = _state.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1], hit[2]
    prompts: dict = {}
    name = ""
    problems = []
    if (folder / "prompts.yaml").is_file():
        problems = _check_prompts(folder / "prompts.yaml", pack)
        if not problems:
            prompts = _load(folder / "prompts.yaml") or {}
    if (folder / "shop.yaml").is_file() and not problems:
        try:
            data = _load(folder / "shop.yaml")
            name = str(data.get("name", "")).strip() if isinstance(data, dict) else ""
        except ValueError as e:
            problems = [str(e)]
    if problems:
        log.error("overrides in %s not applied, keeping the previous ones: %s", folder, "; ".join(problems))
        if hit is not None:
            _state[key] = (stamp, hit[1], hit[2])
            return hit[1], hit[2]
        prompts, name = {}, ""
    _state[key] = (stamp, prompts, name)
    if hit is not None:
        log.info("overrides in %s reloaded", folder)
    return prompts, name


def rename_shop(text: str, pack: Any) -> str:
    """``text`` with the pack's shop name replaced by the one in custom/shop.yaml (if any)."""
    _prompts, name = _current(pack)
    old = pack.data.get("shop_name", "")
    return text.replace(old, name) if name and old else text


def overlay_prompts(pack: Any, base: dict) -> dict:
    """The pack's prompts with the custom ones and the custom shop name applied (cached until a file changes)."""
    prompts, name = _current(pack)
    if not prompts and not name:
        return base
    key = f"merged:{pack.code}"
    hit = _state.get(key)
    if hit is not None and hit[0] is prompts and hit[1] == name and hit[2] is base:
        return hit[3]
    merged = {**base, **prompts}
    old = pack.data.get("shop_name", "")
    if name and old:
        merged = {k: ([str(t).replace(old, name) for t in v] if isinstance(v, list) else str(v).replace(old, name))
                  for k, v in merged.items()}
    _state[key] = (prompts, name, base, merged)
    return merged


def shop_stamp() -> tuple:
    """Changes when custom/shop.yaml changes (the KB re-applies the shop name)."""
    folder = custom_dir()
    return _stamp([folder / "shop.yaml"]) if folder is not None else ()


def kb_files() -> list[Path]:
    """The custom knowledge-base files (``custom/kb/*.yaml|*.md``)."""
    folder = custom_dir()
    kb = folder / "kb" if folder is not None else None
    if kb is None or not kb.is_dir():
        return []
    return sorted(p for p in kb.iterdir() if p.suffix in (".yaml", ".yml", ".md"))


def train_path(pack: Any) -> Path:
    """The pack's training file, or a merged copy with custom/nlu/train.yaml's phrasings added."""
    folder = custom_dir()
    extra = folder / "nlu" / "train.yaml" if folder is not None else None
    if extra is None or not extra.is_file() or _check_train(extra, pack):
        return pack.base_train_path
    base = _load(pack.base_train_path) or {}
    for intent, phrasings in (_load(extra) or {}).get("intents", {}).items():
        base["intents"][intent] = list(base["intents"].get(intent) or []) + list(phrasings)
    out = folder / "nlu" / ".merged-train.yaml"
    text = yaml.safe_dump(base, allow_unicode=True, sort_keys=False)
    if not out.is_file() or out.read_text(encoding="utf-8") != text:
        out.write_text(text, encoding="utf-8")
    return out


def prompts_dir() -> Path | None:
    """custom/prompts/ when it exists (recorded prompts)."""
    folder = custom_dir()
    d = folder / "prompts" if folder is not None else None
    return d if d is not None and d.is_dir() else None


