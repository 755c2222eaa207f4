"""`ivr nlu classify` and `ivr nlu explain` as a user runs them (a real subprocess, real stdin/stdout)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def ivr(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "ivr", *args], input=stdin, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def classified() -> list[dict]:
    lines = [
        "嗯 那个 我 的 快递 咋 还 木有 到",
        json.dumps({"text": "是 的", "prev_agent_text": "您是要取消这个订单吗"}, ensure_ascii=False),
        "订单号 幺 三 八 零 零 幺 二 三 四 五 不是五是六",
        "",
        json.dumps({"text": "五 分", "expected": "rating"}, ensure_ascii=False),
    ]
    p = ivr("nlu", "classify", stdin=("\n".join(lines) + "\n").encode("utf-8"))
    assert p.returncode == 0, p.stderr.decode()
    return [json.loads(x) for x in p.stdout.decode("utf-8").splitlines()]


def test_classify_one_json_line_per_input_line(classified):
    assert len(classified) == 5
    for obj in classified:
        assert list(obj)[:4] == ["text", "intent", "confidence", "slots"]  # the contract, then the additions
        assert isinstance(obj["clarify"], list)


def test_classify_results(classified):
    assert classified[0]["intent"] == "logistics"
    assert classified[0]["text"] == "嗯 那个 我 的 快递 咋 还 木有 到"  # the input, unchanged
    assert classified[1]["intent"] == "affirm"
    assert classified[2]["slots"]["order_id"] == "1380012346"
    assert classified[3]["intent"] == "other"           # an empty line still answers, keeping lines aligned
    assert classified[4]["slots"]["rating"] == 5


@pytest.mark.parametrize(("stdin", "message"), [
    (b'{"text": \n', "line 1: invalid JSON"),
    (b'{"prev_agent_text": "x"}\n', 'needs a string "text"'),
    (b"\xff\xfe\x00bad\n", "line 1: not UTF-8"),
    ('{"text": "好", "expected": "banana"}\n'.encode(), "expected must be one of"),
])
def test_classify_bad_input_is_one_clear_line(stdin, message):
    p = ivr("nlu", "classify", stdin=stdin)
    err = p.stderr.decode("utf-8")
    assert p.returncode == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_explain_shows_the_reasoning():
    p = ivr("nlu", "explain", "俺", "想", "退", "这", "双", "鞋", "尺码", "小", "了")
    out = p.stdout.decode("utf-8")
    assert p.returncode == 0, p.stderr.decode()
    for label in ("normalized:", "tokens:", "concepts:", "scores:", "why:", "intent:", "slots:"):
        assert label in out
    assert "return_request" in out.split("intent:")[1]
    assert '"return_reason": "size"' in out


def test_explain_json_and_unknown_language():
    p = ivr("nlu", "explain", "--json", "转人工")
    obj = json.loads(p.stdout)
    assert obj["intent"] == "human_agent" and obj["explanation"]["decided_by"] == "rule:human_agent"
    p = ivr("nlu", "explain", "--language", "xx-YY", "你好")
    assert p.returncode == 2 and "no language pack" in p.stderr.decode()
