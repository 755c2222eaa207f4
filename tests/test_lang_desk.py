"""Staff-page texts and masking rules live in the language pack: the engine modules that show them hold none.

* ``desk.yaml`` (agent-assist cards, desk actions, login) renders through ``pack.desk_text`` with its fields, strict
  about missing ones; every id the code names exists.
* ``privacy.yaml`` is read by ``ivr.privacy`` as data (no import of ``ivr.lang`` or yaml when it is imported).
* The engine modules named in ``ENGINE`` have no CJK character outside comments and docstrings.
"""

from __future__ import annotations

import ast
import io
import re
import string
import subprocess
import sys
import tokenize
import typing
from datetime import date
from pathlib import Path

import httpx
import pytest
from browser.server import serve_in_thread

from ivr.config import load_settings
from ivr.lang import PromptError, get_pack
from ivr.services.agents import AccountStore
from ivr.services.migrate import ensure_schema
from ivr.services.shop.api import OrderStatus

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ["ivr/web/assist.py", "ivr/web/assist_steps.py", "ivr/web/assist_actions.py", "ivr/web/auth.py",
          "ivr/privacy.py", "ivr/web/wallstate.py", "ivr/web/chat.py", "ivr/web/webhook.py", "ivr/web/security.py",
          "ivr/channels/webhook.py", "ivr/services/records/channels.py", "ivr/web/dashboard.py", "ivr/dialog/nlu/__init__.py",
          "ivr/dialog/nlu/classifier.py"]
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


def _docstring_starts(tree: ast.AST) -> set[tuple[int, int]]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                out.add((first.value.lineno, first.value.col_offset))
    return out


def cjk_in_code(source: str) -> list[str]:
    """Lines ``n: token`` of code (not comments, not docstrings) holding a CJK character or CJK punctuation."""
    docs = _docstring_starts(ast.parse(source))
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT or (tok.type == tokenize.STRING and tok.start in docs):
            continue
        if CJK.search(tok.string):
            found.append(f"{tok.start[0]}: {tok.string[:40]}")
    return found


def test_the_scanner_sees_strings_and_ignores_comments_and_docstrings():
    src = '"""模块。"""\n# 注释\ndef f():\n    """说明。"""\n    return "你好"  # 注释\nx = f"{1}元"\n'
    assert cjk_in_code(src) == ['5: "你好"', '6: f"{1}元"']


@pytest.mark.parametrize("path", ENGINE)
def test_engine_modules_hold_no_language_text(path):
    offenders = cjk_in_code((ROOT / path).read_text(encoding="utf-8"))
    assert not offenders, f"language text in {path} (move it to ivr/lang/<code>/desk.yaml or privacy.yaml): {offenders}"


@pytest.fixture(scope="module")
def zh():
    return get_pack("zh-CN")


def test_every_desk_text_renders_with_its_fields(zh):
    assert zh.desk_texts, "desk.yaml is empty"
    for text_id, tpl in zh.desk_texts.items():
        assert isinstance(tpl, str), text_id
        names = {f for _, f, _, _ in string.Formatter().parse(tpl) if f}
        fields = {n: date(2025, 3, 7) if n == "date" else f"<{n}>" for n in names}
        out = zh.desk_text(text_id, **fields)
        assert "{" not in out and all(f"<{n}>" in out for n in names if n != "date"), (text_id, out)
        for missing in names:
            with pytest.raises(PromptError, match=f"desk text {text_id!r} needs field {missing!r}"):
                zh.desk_text(text_id, **{k: v for k, v in fields.items() if k != missing})


def test_desk_text_examples_and_errors(zh):
    assert zh.desk_text("money", amount="12.50") == "12.50元"
    assert zh.desk_text("date", date=date(2025, 3, 7)) == "03月07日"
    assert zh.desk_text("order.title", order_id="100000000002") == "订单 100000000002"
    assert zh.desk_text("order.window", label="七天无理由", state="可办理", until="03月07日") \
        == "七天无理由退货：可办理（截至03月07日）"
    assert zh.desk_text("action.refused", reason="已超过退货期限") == "店铺拒绝：已超过退货期限"
    assert zh.desk_text("login.forbidden", role="agent") == "您的账号（agent）无权访问此页面。"
    assert zh.desk_text("status.lost_in_space", default="lost_in_space") == "lost_in_space"
    with pytest.raises(PromptError, match="no desk text 'status.lost_in_space'"):
        zh.desk_text("status.lost_in_space")
    with pytest.raises(PromptError, match="needs field 'order_id'"):
        zh.desk_text("order.title")


def _ids_named_in(path: str) -> set[str]:
    """Literal text ids the module passes to desk_text / its shorthands (``t``, ``_text``)."""
    src = (ROOT / path).read_text(encoding="utf-8")
    return set(re.findall(r"""(?:desk_text|\bt|_text)\((?:request, )?["']([a-z_.]+)["']""", src))


def test_every_desk_text_the_code_names_exists(zh):
    from ivr.web.assist_actions import PICKUPS, REASONS
    from ivr.web.assist_steps import STEPS

    named = set().union(*(_ids_named_in(p) for p in ENGINE))
    assert {"money", "order.title", "flow.title", "action.refused", "login.wrong"} <= named  # the scan works
    named |= {f"status.{s}" for s in typing.get_args(OrderStatus)}
    named |= {f"flow.{i}" for i in STEPS} | {f"flow.{i}.step" for i in STEPS}
    named |= {f"action.reason.{r}" for r in REASONS} | {f"action.pickup.{p}" for p in PICKUPS}
    named |= {f"order.window.{k}" for k in ("no_reason", "quality")}
    missing = sorted(named - set(zh.desk_texts))
    assert not missing, f"desk texts the code names but desk.yaml lacks: {missing}"


def test_privacy_reads_the_pack_as_data_and_imports_cheaply():
    code = ("import sys, ivr.privacy as p\n"
            "assert 'yaml' not in sys.modules and 'ivr.lang' not in sys.modules, 'heavy import'\n"
            "print(p.mask_text('我叫张伟，电话+86 138 1234 5678，尾号是八零零零，住上海市浦东新区张江路1号'))\n"
            "print(p.mask_phone('8613812345678'), p.mask_secret('五六七八 幺两 5678'), p.mask_address('广东省深圳市南山区科技园'))\n"
            "print('ivr.lang' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["我叫张*，电话138****，尾号是****，住上海市浦东新区****",
                                     "138**** **** ** **** 广东省深圳市南山区****", "False"]


def test_privacy_rules_of_every_pack_are_loaded():
    from ivr.privacy import LANG_DIR, _rules

    packs = [p for p in LANG_DIR.glob("*/privacy.yaml") if (p.parent / "pack.yaml").is_file()]
    assert len(_rules()) == len(packs) >= 1
    assert all(r.phone and r.spoken_phone and r.tail and r.address and r.address_head and r.name for r in _rules())


def test_login_refusal_and_the_wrong_role_page_speak_the_pack(tmp_path):
    settings = load_settings({"data_dir": str(tmp_path / "data"), "demo_data": False})
    (tmp_path / "data").mkdir()
    ensure_schema(settings.database_url)
    AccountStore(settings.database_url).add("li.na", password="s3cret-pass", role="agent")
    with serve_in_thread(settings) as (url, _app):
        client = httpx.Client(base_url=url, timeout=30)
        r = client.post("/api/login", json={"username": "li.na", "password": "wrong-pass"})
        assert (r.status_code, r.json()["error"]) == (401, get_pack(settings.language).desk_text("login.wrong"))
        assert r.json()["error"] == "用户名或密码不正确"
        assert client.post("/api/login", json={"username": "li.na", "password": "s3cret-pass"}).status_code == 200
        page = client.get("/dashboard")
        assert page.status_code == 403
        assert page.text == ('<!doctype html><meta charset=utf-8><title>无权访问</title><p>您的账号（agent）'
                             '无权访问此页面。</p><p><a href="/agent">返回</a></p>')
