"""The web pages' words live in the language pack (``ivr/lang/<pack>/ui/*.yaml``), not in their templates or scripts.

* A template names its page (``{% set T = ui_page("agent") %}``), shows ``{{ T.key }}`` and hands the same texts to
  its scripts (``<script type="application/json" id="ui-text">``, read by /static/ui_text.js as ``L("key")``).
* Every key a template or one of its scripts uses exists in that page's texts (common.yaml + <page>.yaml): a typo
  would otherwise show the bare key to an agent.
* No template and no script of ours holds a CJK character outside comments.
* The pages render through the real app with the pack's words (login page over HTTP).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivr.lang import get_pack

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "ivr" / "web" / "templates"
STATIC = ROOT / "ivr" / "web" / "static"
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
PAGE = re.compile(r"""ui_page\(\s*["'](\w+)["']\s*\)""")
T_KEY = re.compile(r"""\bT\.(\w+)|\bT\[\s*["'](\w+)["']\s*\]""")
L_KEY = re.compile(r"""(?<![\w.$])L\(\s*["'](\w+)["']""")
SCRIPT = re.compile(r"""<script[^>]*\ssrc="/static/(\w+)\.js\"""")


def _strip_html_comments(text: str) -> str:
    return re.sub(r"<!--.*?-->|\{#.*?#\}", "", text, flags=re.S)


def _strip_js_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"(^|\s)//.*$", r"\1", text, flags=re.M)  # "https://..." in a string is not a comment


def _templates() -> list[Path]:
    return sorted(TEMPLATES.glob("*.html"))


def _scripts() -> list[Path]:
    return sorted(STATIC.glob("*.js"))


def _page_of(template: Path) -> str | None:
    m = PAGE.search(template.read_text(encoding="utf-8"))
    return m.group(1) if m else None


def test_every_page_takes_its_words_from_the_pack():
    missing = [t.name for t in _templates() if _page_of(t) is None]
    assert not missing, f"templates without ui_page(...): {missing}"


@pytest.mark.parametrize("template", _templates(), ids=lambda p: p.name)
def test_template_keys_exist_and_no_words_in_markup(template: Path):
    page = _page_of(template)
    assert page is not None, f"{template.name}: no ui_page(...)"
    texts = get_pack("zh-CN").ui_texts(page)
    markup = _strip_html_comments(template.read_text(encoding="utf-8"))
    bad = [line.strip()[:60] for line in markup.splitlines() if CJK.search(line)]
    assert not bad, f"{template.name}: words in the markup (move them to ui/{page}.yaml): {bad}"
    used = {a or b for a, b in T_KEY.findall(markup)}
    assert not (used - texts.keys()), f"{template.name}: keys not in ui/{page}.yaml: {sorted(used - texts.keys())}"
    scripts = SCRIPT.findall(markup)
    script_keys: set[str] = set()
    for name in scripts:
        script_keys |= set(L_KEY.findall(_strip_js_comments((STATIC / f"{name}.js").read_text(encoding="utf-8"))))
    unknown = sorted(script_keys - texts.keys())
    assert not unknown, f"{template.name}: its scripts use keys not in ui/{page}.yaml: {unknown}"
    if script_keys:
        assert 'id="ui-text"' in markup and "T|tojson" in markup, f"{template.name}: scripts use L() but no ui-text"
        users = [n for n in scripts if L_KEY.search(_strip_js_comments((STATIC / f"{n}.js").read_text(encoding="utf-8")))]
        assert "ui_text" in scripts and scripts.index("ui_text") < scripts.index(users[0]), \
            f"{template.name}: /static/ui_text.js must load before {users[0]}.js"


@pytest.mark.parametrize("script", _scripts(), ids=lambda p: p.name)
def test_scripts_hold_no_words(script: Path):
    code = _strip_js_comments(script.read_text(encoding="utf-8"))
    bad = [line.strip()[:60] for line in code.splitlines() if CJK.search(line)]
    assert not bad, f"{script.name}: words in the code (move them to the page's ui/*.yaml): {bad}"


def test_texts_are_strings_with_sane_placeholders():
    pack = get_pack("zh-CN")
    for path in sorted((pack.dir / "ui").glob("*.yaml")):
        if path.stem == "common":
            continue
        for key, text in pack.ui_texts(path.stem).items():
            assert re.fullmatch(r"\w+", key), f"{path.name}: key {key!r} (letters, digits, _ only)"
            assert text.strip(), f"{path.name}: {key} is empty"
            assert text.count("{") == text.count("}"), f"{path.name}: {key}: unbalanced braces in {text!r}"


def test_login_page_renders_the_packs_words(tmp_path):
    from fastapi.testclient import TestClient

    from ivr.config import load_settings
    from ivr.web.app import create_app

    settings = load_settings({"data_dir": str(tmp_path), "sip_port": 0})
    with TestClient(create_app(settings)) as client:
        res = client.get("/login")
    assert res.status_code == 200
    texts = get_pack(settings.language).ui_texts("login")
    for key in ("title", "heading", "username", "password", "submit"):
        assert texts[key] in res.text
    assert f'<html lang="{settings.language}">' in res.text


def test_fill_keeps_what_it_cannot_fill_and_the_page_escapes_the_result():
    from jinja2 import Environment

    from ivr.web.app import fill_text

    assert fill_text("{name}（{role}）", name="王", role="主管") == "王（主管）"
    assert fill_text("等待{s}秒 {typo} {", s=3) == "等待3秒 {typo} {"  # an operator's typo shows, the page renders
    env = Environment(autoescape=True)
    env.filters["fill"] = fill_text
    assert env.from_string("{{ t | fill(name=n) }}").render(t="<b>{name}</b>", n="<i>x</i>") == \
        "&lt;b&gt;&lt;i&gt;x&lt;/i&gt;&lt;/b&gt;"
