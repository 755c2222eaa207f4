"""Language packs: everything language-specific (prompts, lexicon, number reading and parsing) lives here.

A pack is a folder ``ivr/lang/<code_with_underscore>/`` (``zh-CN`` -> ``zh_CN``) holding data files
(``pack.yaml``, ``lexicon.yaml``, ``prompts.yaml``, ``desk.yaml``, ``userdict.txt``, ``nlu/train.yaml``) and a
module whose ``Pack`` class subclasses :class:`LanguagePack` and implements the reading/parsing methods. The engine
code elsewhere (dialog, tts, asr, web) holds no language strings: it asks ``get_pack(code)``. ``privacy.yaml`` (what
phone numbers, addresses and names look like) is read by :mod:`ivr.privacy` itself, which sits below this package.
"""

from __future__ import annotations

import importlib
import re
import string
from datetime import date
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import yaml

LANG_DIR = Path(__file__).resolve().parent


class UnknownLanguageError(ValueError):
    """No language pack for the requested code."""


class PromptError(KeyError):
    """A prompt id is missing, or a field its template needs was not given."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def available_languages() -> list[str]:
    """Codes of the installed packs, e.g. ``['zh-CN']``."""
    return sorted(p.name.replace("_", "-") for p in LANG_DIR.iterdir() if (p / "pack.yaml").is_file())


# libyaml's parser when PyYAML has it: the same data as yaml.safe_load (same safe constructor) ~9x faster; the
# packs' own files (lexicon.yaml alone ~40 ms in pure Python) are read when a service or chat starts.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml(path: Path) -> Any:
    if not path.is_file():
        return None
    with path.open(encoding="utf-8") as f:
        return yaml.load(f, Loader=_YAML_LOADER)  # a safe loader (see above)


class _StrictFields(dict):
    def __init__(self, what: str, text_id: str, fields: dict[str, Any]):
        super().__init__(fields)
        self.what, self.text_id = what, text_id

    def __missing__(self, key: str) -> Any:
        raise PromptError(f"{self.what} {self.text_id!r} needs field {key!r}")


def _render(what: str, text_id: str, template: str, fields: dict[str, Any]) -> str:
    """``template`` with its ``{field}`` placeholders filled; :class:`PromptError` for a missing field."""
    try:
        return string.Formatter().vformat(template, (), _StrictFields(what, text_id, fields))
    except (IndexError, ValueError) as e:
        raise PromptError(f"{what} {text_id!r}: bad template: {e}") from None


class LanguagePack:
    """Data-driven language pack. Subclasses implement the language's number/date reading and parsing."""

    code: str = ""

    def __init__(self, directory: Path):
        self.dir = directory
        self.data: dict[str, Any] = _load_yaml(directory / "pack.yaml") or {}
        self.code = self.data.get("code", self.code)
        self._ui: dict[str, dict[str, str]] = {}

    # --- data files ---------------------------------------------------------------------------------
    @cached_property
    def lexicon(self) -> dict[str, Any]:
        """Word lists used by NLU and sentiment (``lexicon.yaml``): concepts, slots, sentiment, rules."""
        return _load_yaml(self.dir / "lexicon.yaml") or {}

    @property
    def endpointing(self) -> dict[str, Any]:
        """Words that move a turn's end (``pack.yaml`` ``endpointing``): ``hesitations``, ``yes_no``, ``particles``."""
        return self.data.get("endpointing") or {}

    @property
    def sentiment(self) -> dict[str, Any]:
        """Sentiment lexicon: ``anger`` / ``frustration`` / ``positive`` word lists, ``intensifiers``, ``negators``."""
        return self.lexicon.get("sentiment", {})

    @property
    def user_dict_path(self) -> Path:
        """Tokenizer user dictionary of shop terms (jieba format for zh-CN)."""
        return self.dir / self.data.get("user_dict", "userdict.txt")

    @property
    def lexicon_path(self) -> Path:
        return self.dir / "lexicon.yaml"

    @property
    def base_train_path(self) -> Path:
        """The pack's own intent training phrases (``nlu/train.yaml``)."""
        return self.dir / "nlu" / "train.yaml"

    @property
    def train_path(self) -> Path:
        """Intent training phrases: the pack's, plus ``<data_dir>/custom/nlu/train.yaml`` (``ivr.lang.custom``)."""
        from ivr.lang.custom import train_path

        return train_path(self)

    @property
    def prompts_path(self) -> Path:
        return self.dir / "prompts.yaml"

    @cached_property
    def base_prompts(self) -> dict[str, str | list[str]]:
        """The pack's own prompt_id -> template or list of variants (``prompts.yaml``)."""
        data = _load_yaml(self.prompts_path) or {}
        if not isinstance(data, dict):
            raise PromptError(f"{self.prompts_path}: expected a mapping prompt_id -> template")
        return data

    @property
    def prompts(self) -> dict[str, str | list[str]]:
        """The pack's prompts with the shop's overrides (``<data_dir>/custom/``, see ``ivr.lang.custom``)."""
        from ivr.lang.custom import overlay_prompts

        return overlay_prompts(self, self.base_prompts)

    @cached_property
    def desk_texts(self) -> dict[str, Any]:
        """Texts of the staff pages (assist cards, desk actions, login): text_id -> template (``desk.yaml``)."""
        path = self.dir / "desk.yaml"
        data = _load_yaml(path) or {}
        if not isinstance(data, dict):
            raise PromptError(f"{path}: expected a mapping text_id -> template")
        return data

    def ui_texts(self, page: str) -> dict[str, str]:
        """Texts of one web page (``ui/common.yaml`` then ``ui/<page>.yaml``: key -> text, ``{field}`` placeholders
        filled by the page's script). The templates read them as ``T.key``, the scripts as ``L("key", {...})``."""
        if page not in self._ui:
            merged: dict[str, str] = {}
            for name in ("common", page):
                path = self.dir / "ui" / f"{name}.yaml"
                data = _load_yaml(path) or {}
                if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
                    raise PromptError(f"{path}: expected a mapping key -> text")
                merged.update({str(k): v for k, v in data.items()})
            self._ui[page] = merged
        return self._ui[page]

    def reload(self) -> None:
        """Forget cached data files (after an operator edited them)."""
        for name in ("lexicon", "base_prompts", "desk_texts"):
            self.__dict__.pop(name, None)
        self._ui.clear()

    # --- prompts ------------------------------------------------------------------------------------
    def prompt_variants(self, prompt_id: str) -> list[str]:
        """All variants of a prompt (one for a plain string)."""
        try:
            tpl = self.prompts[prompt_id]
        except KeyError:
            raise PromptError(f"no prompt {prompt_id!r} in {self.prompts_path}") from None
        return [str(t) for t in tpl] if isinstance(tpl, list) else [str(tpl)]

    def prompt(self, prompt_id: str, *, variant: int = 0, **fields: Any) -> str:
        """The prompt text with ``{field}`` placeholders filled; ``variant`` picks among variants (modulo)."""
        variants = self.prompt_variants(prompt_id)
        if not variants:
            raise PromptError(f"prompt {prompt_id!r} has no text")
        return _render("prompt", prompt_id, variants[variant % len(variants)], fields)

    def desk_text(self, text_id: str, /, default: str | None = None, **fields: Any) -> str:
        """The staff-page text ``text_id`` (``desk.yaml``, e.g. ``order.title``) with its ``{field}`` placeholders
        filled. An unknown id returns ``default`` as is, or raises :class:`PromptError`; a missing field raises."""
        tpl = self.desk_texts.get(text_id)
        if not isinstance(tpl, str):
            if default is not None:
                return default
            raise PromptError(f"no desk text {text_id!r} in {self.dir / 'desk.yaml'}")
        return _render("desk text", text_id, tpl, fields)

    # --- language-specific: implemented by each pack ------------------------------------------------
    def normalize(self, text: str) -> str:
        """Recogniser text -> clean text (spacing, fillers, dialect words, full-width forms)."""
        return re.sub(r"\s+", " ", text).strip()

    def mask_numbers(self, normalized: str, token: str = " xnum ") -> str:
        """Replace spoken/written multi-digit numbers by a neutral token."""
        return re.sub(r"\d{3,}", token, normalized)

    def tokenize(self, text: str) -> list[str]:
        """Words of normalised text."""
        return text.split()

    def say_digits(self, digits: str) -> str:
        raise NotImplementedError

    def say_number(self, n: int) -> str:
        raise NotImplementedError

    def say_amount(self, cents: int) -> str:
        raise NotImplementedError

    def say_date(self, d: date, today: date | None = None) -> str:
        raise NotImplementedError

    def parse_digits(self, text: str) -> str:
        raise NotImplementedError

    def parse_number(self, text: str) -> int | None:
        """A spoken cardinal ('二十三', '23', '两') -> int, or None."""
        raise NotImplementedError

    def parse_date(self, text: str, today: date | None = None) -> date | None:
        """A date mentioned in the text ('明天', '十一月二十五号') -> date, or None."""
        raise NotImplementedError


def _module_name(code: str) -> str:
    return code.replace("-", "_")


def get_pack(code: str = "zh-CN") -> LanguagePack:
    """The language pack for ``code`` (cached). Raises :class:`UnknownLanguageError` for unknown codes."""
    if not isinstance(code, str) or not re.fullmatch(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*", code or ""):
        raise UnknownLanguageError(f"bad language code {code!r} (expected e.g. zh-CN)")
    return _load_pack(code.replace("_", "-"))


@cache
def _load_pack(code: str) -> LanguagePack:
    name = _module_name(code)
    directory = LANG_DIR / name
    if not (directory / "pack.yaml").is_file():
        have = ", ".join(available_languages()) or "none"
        raise UnknownLanguageError(f"no language pack for {code!r} (installed: {have})")
    module = importlib.import_module(f"ivr.lang.{name}")
    return module.Pack(directory)
