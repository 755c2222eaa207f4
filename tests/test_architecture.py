"""The shape of the code, checked from the code itself (issue 15).

* No import cycle between modules of ``ivr`` (every import counts: module level, inside functions, under
  ``TYPE_CHECKING``), except the cycles named in ``KNOWN_CYCLES``.
* No import goes up the layer list in docs/architecture.md (the block after ``<!-- layers -->``): a package may
  import only packages on lower lines, never one on its own line or above. Every package must be on the list.
* No module in ``ivr/`` is over 450 lines, except those named in ``OVERSIZED``.
* No parameter typed ``Any`` (ruff ANN401) in ``ivr/call``, ``ivr/dialog`` and ``ivr/telephony``, except where a
  ``# noqa: ANN401 — reason`` on the line says why.

The allow-lists must stay true: an entry whose cycle or size is gone fails the test too, so they only shrink.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IVR = ROOT / "ivr"
MAX_LINES = 450
TYPED_PACKAGES = ("ivr/call", "ivr/dialog", "ivr/telephony")  # no `Any` parameters (issue 15)
RUFF = Path(sys.executable).parent / "ruff"  # the venv's ruff (a dev dependency)

# package prefix -> why a cycle inside it is still there (each must still have one)
KNOWN_CYCLES: dict[str, str] = {
}
# module path -> why it is still over MAX_LINES (each must still be over)
OVERSIZED = {
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(IVR.rglob("*.py"))}


def _resolve(name: str) -> str:
    """The module an imported name lives in (``ivr.call.ports.CallPort`` -> ``ivr.call.ports``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def imports_of(mod: str) -> set[str]:
    path = MODULES[mod]
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {_resolve(a.name) for a in node.names if a.name.split(".")[0] == "ivr"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            if base.split(".")[0] != "ivr":
                continue
            for a in node.names:  # `from ivr.call import ports` imports the module ivr.call.ports
                found.add(_resolve(f"{base}.{a.name}"))
    found.discard(mod)
    found.discard("")
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(GRAPH[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for m in MODULES:
        if m not in index:
            visit(m)
    return out


def layers() -> dict[str, int]:
    """Package -> line of the layer list (0 = top)."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- layers -->\s*```[a-z]*\n(.*?)```", text, re.S)
    assert m, "docs/architecture.md has no ```-fenced layer list after <!-- layers -->"
    out: dict[str, int] = {}
    for i, line in enumerate(x for x in m[1].splitlines() if x.split("#")[0].strip()):
        for name in line.split("#")[0].split():
            assert name not in out, f"{name} twice in the layer list"
            out[name] = i
    return out


def package(mod: str) -> str:
    """``ivr.call.session`` -> ``call``; top-level modules are their own package (``ivr.config`` -> ``config``)."""
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "ivr"


def test_the_walker_sees_imports_of_every_kind():
    # a module-level, a function-level and a TYPE_CHECKING import of this code base, as the walker reports them
    assert "ivr.call.ports" in GRAPH["ivr.call.session"]
    assert "ivr.dialog.manager" in GRAPH["ivr.wiring"]  # imported inside new_dialog()
    assert "ivr.asr.engine" in GRAPH["ivr.call.manager"]  # under TYPE_CHECKING
    assert len(MODULES) > 100 and all(m.startswith("ivr") for m in MODULES)


def test_no_import_cycle_between_modules():
    unexplained, explained = [], set()
    for comp in cycles():
        owner = next((p for p in KNOWN_CYCLES if all(m == p or m.startswith(p + ".") for m in comp)), None)
        if owner is None:
            unexplained.append(comp)
        else:
            explained.add(owner)
    assert not unexplained, "import cycles: " + "; ".join(" <-> ".join(c) for c in unexplained)
    stale = set(KNOWN_CYCLES) - explained
    assert not stale, f"no cycle left in {sorted(stale)}: remove it from KNOWN_CYCLES"


def test_every_import_goes_down_the_layer_list():
    level = layers()
    missing = sorted({package(m) for m in MODULES} - set(level))
    assert not missing, f"packages not on the layer list in docs/architecture.md: {missing}"
    up = []
    for mod, deps in GRAPH.items():
        a = package(mod)
        for dep in deps:
            b = package(dep)
            if a != b and level[b] <= level[a]:
                up.append(f"{mod} -> {dep} ({a} is on line {level[a]}, {b} on line {level[b]})")
    assert not up, "imports that do not go down the layer list:\n" + "\n".join(sorted(up))


def test_no_module_over_450_lines():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in MODULES.values()}
    over = {p: n for p, n in sizes.items() if n > MAX_LINES and p not in OVERSIZED}
    assert not over, f"modules over {MAX_LINES} lines: {over}"
    fixed = [p for p in OVERSIZED if sizes.get(p, 0) <= MAX_LINES]
    assert not fixed, f"{fixed} no longer over {MAX_LINES} lines: remove from OVERSIZED"


def test_the_rules_catch_what_they_are_for():
    """The checks themselves fail on a cycle and on an upward import (no test that cannot fail)."""
    saved = dict(GRAPH)
    try:
        GRAPH["ivr.config"] = GRAPH["ivr.config"] | {"ivr.privacy"}
        GRAPH["ivr.privacy"] = GRAPH["ivr.privacy"] | {"ivr.config"}
        assert any({"ivr.config", "ivr.privacy"} <= set(c) for c in cycles())
        GRAPH["ivr.audio.frames"] = GRAPH["ivr.audio.frames"] | {"ivr.call.session"}
        try:
            test_every_import_goes_down_the_layer_list()
        except AssertionError as e:
            assert "ivr.audio.frames -> ivr.call.session" in str(e)
        else:
            raise AssertionError("an import from audio up to call went unnoticed")
    finally:
        GRAPH.clear()
        GRAPH.update(saved)


def _ruff_ann401(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert RUFF.is_file(), f"ruff is not installed beside {sys.executable}: `pip install -e .[dev]`"
    return subprocess.run([str(RUFF), "check", "--extend-select", "ANN401", "--output-format", "concise", *args],
                          cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=120)


def test_no_any_parameters_in_call_dialog_and_telephony():
    r = _ruff_ann401(*TYPED_PACKAGES)
    assert r.returncode == 0, "Any-typed parameters (type them, or justify with `# noqa: ANN401 — reason`):\n" \
        + r.stdout + r.stderr


def test_the_any_check_catches_an_any_parameter():
    r = _ruff_ann401("--stdin-filename", "ivr/telephony/probe.py", "-",
                     stdin="from typing import Any\n\n\ndef f(x: Any) -> None:\n    pass\n")
    assert r.returncode == 1 and "ANN401" in r.stdout, r.stdout + r.stderr
