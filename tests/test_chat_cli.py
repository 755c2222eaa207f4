"""`ivr chat` as users run it: the console (--json), scripted conversations (--script) and their exit codes.
Runs the real command in a subprocess against the embedded SQLite demo shop (seeded on first use)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).parent / "dialog_scripts"


def _ivr(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ivr", *args], input=stdin, capture_output=True, text=True,
                          timeout=240)


def test_console_json_lines_per_bot_turn() -> None:
    lines = "\n".join(["查一下订单", "#dtmf 100000000004#", "#dtmf 8000", "", "再见", "5"]) + "\n"
    proc = _ivr("chat", "--json", "--caller-id", "13900000000", stdin=lines)
    assert proc.returncode == 0, proc.stderr
    turns = [json.loads(x) for x in proc.stdout.splitlines()]
    assert all({"reply", "intent", "state", "actions"} <= set(t) for t in turns)
    assert turns[0]["state"] == "main_menu" and "欢迎" in turns[0]["reply"]
    assert turns[1]["intent"] == "order_status" and turns[1]["state"] == "ask_order"
    assert turns[2]["state"] == "verify"
    verified = turns[3]
    assert "caller_verified" in verified["actions"] and "幺零零零零零零零零零零四" in verified["reply"]
    assert "没有听到" in turns[4]["reply"]  # the empty line is silence
    assert turns[-1]["end_call"] and "csat_recorded" in turns[-1]["actions"]


def test_script_runner_passes_good_scripts_and_names_the_failing_turn(tmp_path) -> None:
    bad = tmp_path / "wrong_expectation.yaml"
    bad.write_text("name: deliberately wrong\nturns:\n  - say: 我要退货\n    expect: {state: main_menu}\n",
                   encoding="utf-8")
    proc = _ivr("chat", "--script", str(SCRIPTS / "cancel_happy.yaml"), str(bad))
    assert proc.returncode == 1
    assert "PASS" in proc.stdout and "cancel_happy.yaml" in proc.stdout
    assert "FAIL" in proc.stderr and "turn 1 (say '我要退货'): state 'ask_order', expected 'main_menu'" in proc.stderr


def test_invalid_script_is_one_line_error_exit_2(tmp_path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("turns: [ {say: a, dtmf: '1'} ]\n", encoding="utf-8")
    proc = _ivr("chat", "--script", str(broken))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "turn 1 needs exactly one of" in proc.stderr
    proc = _ivr("chat", "--script", str(tmp_path / "missing.yaml"))
    assert proc.returncode == 2 and "cannot read script" in proc.stderr and "Traceback" not in proc.stderr
