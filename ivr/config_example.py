"""The example ``deploy/ivr.toml``, generated from :class:`ivr.config.Settings` so it cannot drift.

``python -m ivr.config_example > deploy/ivr.toml`` rewrites it; ``tests/test_deploy_files.py`` fails when the
committed file differs. Every setting appears with its description and default, grouped under the tables of the
``# --- group ---`` comments in ``ivr/config.py`` (tables are only for reading: keys are flat). Paths whose default
depends on the user (``data_dir``, ``models_dir``) are set to the system install's ``/var/lib/ivr``.
"""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

from ivr.config import Settings

# The system install (deploy/ivr.service) keeps its data here; the defaults live under the user's home.
DEPLOY_VALUES: dict[str, Any] = {"data_dir": "/var/lib/ivr", "models_dir": "/var/lib/ivr/models"}
_GROUP = re.compile(r"^\s*# --- (.+?) -+\s*$")
_FIELD = re.compile(r"^\s{4}(\w+): ")


def _groups() -> list[tuple[str, list[str]]]:
    """(group title, field names) in the order of ivr/config.py."""
    groups: list[tuple[str, list[str]]] = [("general", [])]
    for line in inspect.getsource(Settings).splitlines():
        if m := _GROUP.match(line):
            groups.append((m.group(1).split(" (")[0].strip(), []))
        elif (m := _FIELD.match(line)) and m.group(1) in Settings.model_fields:
            groups[-1][1].append(m.group(1))
    return [(title, names) for title, names in groups if names]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):  # an inline table
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, list):
        return "[" + ", ".join("{ " + ", ".join(f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in item.items())
                               + " }" if isinstance(item, dict) else json.dumps(item) for item in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _table(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")


def example_toml() -> str:
    """The text of deploy/ivr.toml."""
    out = ["# ivr.toml: every setting of `ivr serve` with its default (generated: python -m ivr.config_example).",
           "# Copy to /etc/ivr/ivr.toml (IVR_CONFIG) or ./ivr.toml. Environment variables IVR_<NAME> override it.",
           "# The [tables] are only for reading: keys are flat, any key may sit under any table.", ""]
    fields = Settings.model_fields
    for title, names in _groups():
        out.append(f"[{_table(title)}]")
        for name in names:
            info = fields[name]
            desc = info.description or ""
            if info.annotation is not None and "Literal" in str(info.annotation):
                desc = (desc + " " if desc else "") + "One of: " + ", ".join(
                    json.dumps(a) for a in info.annotation.__args__) + "."
            for chunk in _wrap(desc):
                out.append(f"# {chunk}")
            if name in DEPLOY_VALUES:
                out.append(f"# default: under $XDG_DATA_HOME (~/.local/share/ivr); the system install uses {DEPLOY_VALUES[name]}")
                out.append(f"{name} = {_toml_value(DEPLOY_VALUES[name])}")
                continue
            default = info.get_default(call_default_factory=True)
            if default is None:
                out.append(f"# {name} = \"\"  # default: not set")
            else:
                out.append(f"{name} = {_toml_value(default)}")
        out.append("")
    return "\n".join(out)


def _wrap(text: str, width: int = 110) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + ([line] if line else [])


if __name__ == "__main__":
    print(example_toml(), end="")
