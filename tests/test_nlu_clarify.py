"""Knowing when it does not know, two needs in one utterance, `ivr nlu eval`, and the learning loop.

Utterances here are written for these tests (not copied from training data, the held-out files or the dev set).
The held-out files in tests/data/ were written before the phrasing work they measure; nlu_sealed.tsv and
nlu_sealed2.tsv were only run at the end of their rounds (nlu_heldout.tsv and nlu_fresh.tsv were used to diagnose).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from ivr.dialog.nlu import TASK_INTENTS, clarify_of, get_nlu, second_need_of
from ivr.dialog.nlu.evaluate import evaluate, read_rows
from tests.conftest import ROOT

DATA = ROOT / "tests" / "data"


@pytest.fixture(scope="module")
def nlu():
    return get_nlu("zh-CN")


@pytest.mark.parametrize(("text", "intent"), [
    # the misses the issue reported, said differently
    ("你们 这样 处理 我 是 真的 很 不 满意", "complaint"),
    ("单号 是 二 零 二 四 一 一 零 八 九 九 麻烦 查 一下", "order_status"),
    ("我 上周 买 的 那台 冰箱 现在 跑到 哪儿 了", "logistics"),
    ("降价 了 能 把 差价 退 给 我 吗", "price_promotion"),
    ("这 款 洗衣机 现在 还有 货 吗", "product_question"),
    ("好 的 谢谢 暂时 没有 别的 事 了", "thanks"),
])
def test_reported_misses_are_understood(nlu, text, intent):
    r = nlu.parse(text)
    assert r.intent == intent, r.explanation
    assert clarify_of(r) == []


def test_spoken_order_number_with_a_lookup_request(nlu):
    r = nlu.parse("订单号 是 幺 三 八 零 零 幺 二 三 四 五 帮 我 看 看")
    assert r.intent == "order_status" and r.slots["order_id"] == "1380012345"
    r = nlu.parse("幺 三 八 零 零 幺 二 三 四 五", expected="order_id")  # an answer to "your order number?"
    assert r.intent == "other" and r.slots["order_id"] == "1380012345"


@pytest.mark.parametrize(("text", "expected", "slot", "value"), [
    ("我 的 单号 一 零 零 零 零 零 零 零 零 零 零 七", None, "order_id", "100000000007"),
    ("订单 号 是 2 0 2 4 1 1 0 8 9 9", None, "order_id", "2024110899"),
    ("二零二四幺幺零八九九 查 一下", None, "order_id", "2024110899"),
    ("一 零 零 零 零 零 零 零 零 零 零 二", "order_id", "order_id", "100000000002"),
    ("手机 后 四 位 是 幺 三 五 七", None, "phone_tail", "1357"),
    ("洞 拐 勾 两", "phone_tail", "phone_tail", "0792"),
    ("尾号 是 三 个 八 一", None, "phone_tail", "8881"),
    ("1 3 5 7", "phone_tail", "phone_tail", "1357"),
])
def test_spoken_order_numbers_and_phone_tails(nlu, text, expected, slot, value):
    assert nlu.parse(text, expected=expected).slots.get(slot) == value


@pytest.mark.parametrize("text", ["东西 还 没 收到 我 不 想要 了", "能 不能 快 点 我 不要 了"])
def test_unsure_request_names_two_task_candidates(nlu, text):
    r = nlu.parse(text)
    cands = clarify_of(r)
    assert len(cands) == 2 and cands[0] != cands[1] and set(cands) <= set(TASK_INTENTS), r.explanation
    assert r.intent == cands[0] and r.confidence < 0.55


@pytest.mark.parametrize(("text", "first", "second"), [
    ("查 一下 物流 顺便 开 个 发票", "logistics", "invoice"),
    ("我 想 退货 另外 帮 我 看 下 退款 到 哪 了", "return_request", "refund_status"),
    ("帮 我 改 个 地址 还有 件 事 发票 抬头 也 要 改", "change_address", "invoice"),
    ("帮 我 取消 订单 还有 就是 退款 多久 到 账", "cancel_order", "refund_status"),  # 就是 is a filler elsewhere
    ("查 下 物流 还有 发票 也 帮 我 开 一下", "logistics", "invoice"),
])
def test_two_needs_first_served_second_remembered(nlu, text, first, second):
    r = nlu.parse(text)
    assert (r.intent, second_need_of(r)) == (first, second), r.explanation


@pytest.mark.parametrize("text", [
    "收到 货 发现 坏 了 还有 点 脏 要 退货",   # a story, then one request
    "退款 还有 多久 到",
    "还有 货 吗",
    "我 的 订单 还有 效 吗",
    "衣服 小 了 颜色 也 不 喜欢 想 换 一 件",
])
def test_one_need_is_not_split(nlu, text):
    assert second_need_of(nlu.parse(text)) is None


@pytest.mark.parametrize("name", ["nlu_heldout.tsv", "nlu_sealed.tsv", "nlu_fresh.tsv", "nlu_sealed2.tsv",
                                  "nlu_probe.tsv", "nlu_sealed3.tsv", "nlu_round3.tsv", "nlu_round3b.tsv",
                                  "nlu_round4.tsv", "nlu_sealed6.tsv", "nlu_sealed7.tsv"])
# (nlu_sealed4.tsv, 30 rows, is checked with the context replies below)
def test_own_held_out_sets_meet_the_targets(nlu, name):
    rows, _ = read_rows(DATA / name)
    ev = evaluate(nlu, rows).as_dict()
    print(f"\n{name}: all {ev['accuracy']:.1%}, task {ev['task_accuracy']:.1%}, "
          f"clarify {ev['clarification_rate']:.1%}, wrong action {ev['wrong_action_rate']:.1%}")
    assert ev["rows"] >= 35
    assert ev["task_accuracy"] >= 0.95 and ev["accuracy"] >= 0.90
    assert ev["wrong_action_rate"] <= 0.02 and ev["clarification_rate"] <= 0.10


def test_replies_in_the_light_of_the_agent_turn():
    """tests/data/nlu_context.tsv: short chat replies with the agent's previous turn (written before the
    round-3 reply rules; 19/20 before round 3, one label corrected after its first run)."""
    nlu = get_nlu("zh-CN")
    rows, _ = read_rows(DATA / "nlu_context.tsv")
    ev = evaluate(nlu, rows).as_dict()
    assert ev["rows"] >= 20 and ev["accuracy"] >= 0.9 and ev["wrong_actions"] == 0, ev
    # the last two sets of round 3 (first runs: 27/30 and 27/30; the round-2 code had 26/30 and 28/30)
    for name in ("nlu_sealed4.tsv", "nlu_sealed5.tsv"):
        rows, _ = read_rows(DATA / name)
        ev = evaluate(nlu, rows).as_dict()
        assert ev["rows"] >= 30 and ev["accuracy"] >= 0.9 and ev["wrong_action_rate"] <= 0.04, (name, ev)


@pytest.mark.parametrize(("text", "prev", "intent"), [
    ("转人工 我要开发票", None, "invoice"),               # the need wins over the request for a person
    ("人工 帮我取消订单", None, "cancel_order"),
    ("我要转人工", None, "human_agent"),                  # ... which alone still transfers
    ("服务太差了 我要退货", None, "return_request"),      # and over a complaint lead-in
    ("没事了 已经自己处理好了", "请问还需要帮您催一下吗", "other"),   # settled, not a "no"
    ("是我弄错了 不用了", "需要帮您申请换货吗", "deny"),            # the final refusal decides
    ("不用 我自己去取就行", "需要帮您改地址吗", "deny"),
    ("是的", "需要帮您申请换货吗", "affirm"),
    ("不用了 放门口就行", "需要帮您预约送货时间吗", "deny"),       # a refusal on the question's topic
    ("不用了 我想退货", "需要帮您催一下快递吗", "return_request"),  # a new topic after it is a request
])
def test_round3_reply_and_lead_in_rules(text, prev, intent):
    assert get_nlu("zh-CN").parse(text, prev_agent_text=prev).intent == intent


def test_recogniser_homophones_keep_their_intent():
    """Syllable features (pack.yaml ``phonetic: pinyin``): 快地 for 快递, 退获 for 退货, 定单 for 订单 ...
    (tests/data/nlu_homophones.tsv, written before the feature; without it 16/24 and one wrong action)."""
    nlu = get_nlu("zh-CN")
    rows, _ = read_rows(DATA / "nlu_homophones.tsv")
    ev = evaluate(nlu, rows).as_dict()
    assert ev["accuracy"] >= 0.85 and ev["wrong_action_rate"] == 0, ev


def test_phone_style_utterances_of_the_unseen_sets():
    """Target: >= 97 % of phone-recogniser style utterances (spaced, digit words, dialect) on the sets never
    used for tuning (nlu_sealed.tsv, nlu_sealed2.tsv; round 4: nlu_sealed6.tsv, nlu_sealed7.tsv), each set too."""
    nlu = get_nlu("zh-CN")
    right = total = 0
    for name in ("nlu_sealed.tsv", "nlu_sealed2.tsv", "nlu_sealed6.tsv", "nlu_sealed7.tsv"):
        with (DATA / name).open(encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f, delimiter="\t") if r["style"] == "phone"]
        hits = sum(nlu.parse(r["text"], prev_agent_text=r.get("prev_agent_text") or None).intent == r["intent"]
                   for r in rows)
        assert rows and hits / len(rows) >= 0.97, f"{name}: {hits}/{len(rows)}"
        right, total = right + hits, total + len(rows)
    assert total >= 90 and right / total >= 0.97, f"{right}/{total}"


def ivr(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "ivr", *args], input=stdin, capture_output=True, timeout=120)


def test_nlu_eval_command_reads_any_labelled_tsv(tmp_path):
    f = tmp_path / "shop_log.tsv"
    f.write_text("id\tintent\tcustomer_text\tnote\n"
                 "1\tlogistics\t我 的 快递 到 哪 了\tx\n"
                 "2\tcomplaint\t你们 的 服务 太 差 了\t\n"
                 "3\tinvoice\t我 想 查 一下 物流\twrong on purpose\n"
                 "4\tcomplaint\t东西 还 没 收到 我 不 想要 了\tunsure: asked, not acted on\n", encoding="utf-8")
    p = ivr("nlu", "eval", str(f))
    out = p.stdout.decode()
    assert p.returncode == 0, p.stderr.decode()
    assert "all intents:        2/4 = 50.0%" in out
    assert "clarification rate: 1/4 = 25.0%" in out
    assert "wrong-action rate:  1/4 = 25.0%" in out      # row 3 only: row 4 is wrong too, but asked about
    assert "invoice -> logistics: 1" in out
    p = ivr("nlu", "eval", "--json", str(f))
    d = json.loads(p.stdout)
    assert (d["rows"], d["correct"], d["clarified"], d["wrong_actions"]) == (4, 2, 1, 1)
    assert {x["intent"]: x["correct"] for x in d["per_intent"]}["complaint"] == 1


def test_nlu_eval_bad_file_is_one_clear_line(tmp_path):
    f = tmp_path / "bad.tsv"
    f.write_text("sentence\tlabel\n你好\tgreeting\n", encoding="utf-8")
    p = ivr("nlu", "eval", str(f))
    err = p.stderr.decode()
    assert p.returncode == 2 and "needs a 'text'" in err and "Traceback" not in err


def test_classify_reports_clarify_and_honours_prev_agent_text():
    lines = [
        "东西 还 没 收到 我 不 想要 了",
        json.dumps({"text": "那 就 改成 单位 的 吧", "prev_agent_text": "您的发票抬头可以修改"}, ensure_ascii=False),
        "查 一下 物流 顺便 开 个 发票",
    ]
    p = ivr("nlu", "classify", stdin=("\n".join(lines) + "\n").encode())
    out = [json.loads(x) for x in p.stdout.decode().splitlines()]
    assert p.returncode == 0, p.stderr.decode()
    assert [list(o)[:4] for o in out] == [["text", "intent", "confidence", "slots"]] * 3
    assert len(out[0]["clarify"]) == 2
    assert out[1]["intent"] == "invoice" and out[1]["clarify"] == []
    assert (out[2]["intent"], out[2]["second_intent"]) == ("logistics", "invoice")


def test_clarified_utterances_feed_the_feedback_export(tmp_path):
    from ivr.cli import main
    from ivr.dialog.manager import DialogManager
    from ivr.services.migrate import ensure_schema
    from ivr.services.records import RecordStore
    from ivr.services.records.capture import RecordedDialog
    from ivr.services.shop import SqlShop, seed_demo

    shop_url, db = f"sqlite:///{tmp_path / 'shop.db'}", f"sqlite:///{tmp_path / 'r.db'}"
    seed_demo(shop_url)
    ensure_schema(db)
    d = RecordedDialog(DialogManager(SqlShop(shop_url)), RecordStore(db), caller_id="13800138000")
    d.start()
    assert d.text("东西 还 没 收到 我 不 想要 了").state == "clarify"
    assert d.text("查 物流").intent == "logistics"
    d.finish()
    out = tmp_path / "cand.jsonl"
    assert main(["feedback", "export", "--period", "all", "-o", str(out), "--db", db]) == 0
    groups = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    g = next(g for g in groups if "不想要" in g["text"].replace(" ", ""))
    assert g["suggested_intent"] == "logistics" and "clarify" in g["states"]
