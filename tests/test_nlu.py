"""Chinese NLU on phone-recogniser style text: intents, control words, slots, context, explanations.

The phrasings here are written for these tests (ASR spacing, Chinese numerals, fillers, self-corrections,
dialect words) and are deliberately not copies of the training patterns in ivr/lang/zh_CN/nlu/train.yaml.
"""

from __future__ import annotations

import json
import logging
from datetime import date

import pytest

from ivr.dialog.nlu import ALL_INTENTS, INTENTS, get_nlu, result_json
from ivr.dialog.types import NluResult

TODAY = date(2025, 11, 20)


@pytest.fixture(scope="module")
def nlu():
    return get_nlu("zh-CN")


@pytest.mark.parametrize(("text", "intent"), [
    # order status
    ("喂 你好 我 想 问 一下 我 那个 订单 现在 啥 情况", "order_status"),
    ("我 前天 拍 的 那 台 冰箱 到现在 还 没 发货 咋回事", "order_status"),
    ("付 了 钱 好几天 了 订单 还是 待 出库", "order_status"),
    # logistics
    ("嗯 那个 我 的 快递 咋 还 木有 到 啊", "logistics"),
    ("俺 的 包裹 走 到 哪 了", "logistics"),
    ("物流 三天 都 没 动 了 你们 帮 我 看看", "logistics"),
    ("快递 显示 签收 了 可是 我 根本 没 拿到", "logistics"),
    ("明天 上午 能 送到 吗 我 下午 不在家", "logistics"),
    # returns / exchanges / refunds
    ("这 双 鞋 我 不 想要 了 能 退 不", "return_request"),
    ("收到 的 杯子 是 碎 的 我 要 退货", "return_request"),
    ("衣服 小 了 一码 想 换 个 大 一点 的", "exchange_request"),
    ("我 要 换货 颜色 发 错 了", "exchange_request"),
    ("退货 都 寄 回去 一个 礼拜 了 钱 咋 还 没 退 给 我", "refund_status"),
    ("退款 啥时候 能 到 我 银行卡 上", "refund_status"),
    # cancel / address / invoice / price / product
    ("刚才 下 的 单 买 错 了 帮 我 取消 掉", "cancel_order"),
    ("那个 订单 我 不 要 了 还 没 发货 给 我 撤 了 吧", "cancel_order"),
    ("收货 地址 填 错 了 能 帮 我 改 成 公司 的 吗", "change_address"),
    ("周六 家里 没人 能 不能 改 到 周日 再 送", "change_address"),
    ("我 要 开 个 发票 抬头 写 公司 的", "invoice"),
    ("电子 发票 在 哪里 下载 啊", "invoice"),
    ("我 刚 买 三天 就 降价 了 一百 块 能 退 差价 吗", "price_promotion"),
    ("现在 买 有 啥 优惠券 没有", "price_promotion"),
    ("这个 耳机 支持 降噪 吗", "product_question"),
    ("洗衣机 保修 几 年 啊", "product_question"),
    # complaint / human
    ("你们 这 什么 破 服务 我 要 投诉", "complaint"),
    ("打 了 三 次 电话 都 没人 处理 太 过分 了", "complaint"),
    ("转 人工", "human_agent"),
    ("别 让 机器人 跟 我 说 给 我 找 个 真人", "human_agent"),
    # small talk
    ("喂 你好", "greeting"),
    ("好 的 谢谢 你 啊", "thanks"),
    ("没有 了 谢谢", "thanks"),
    ("行 那 就 这样 再见", "goodbye"),
    ("对 对 对", "affirm"),
    ("嗯 是 的", "affirm"),
    ("嗯", "affirm"),
    ("不用 了", "deny"),
    ("不是 这个", "deny"),
    # control
    ("你 说 啥 我 没 听清", "repeat"),
    ("再 说 一遍", "repeat"),
    ("返回 主菜单", "main_menu"),
    ("你 等 一下 我 找找", "wait"),
    ("订单号 我 不 记得 了", "dont_know"),
])
def test_intents_on_phone_style_text(nlu, text, intent):
    r = nlu.parse(text)
    assert r.intent == intent, r.explanation


@pytest.mark.parametrize(("text", "intent"), [
    # how an exchange goes (worded unlike the training phrases)
    ("那 换 的 新 货 是 快递 小哥 上门 取 旧 的 时候 一块 带 过来 吗", "exchange_request"),
    ("我 把 坏 的 寄 回去 以后 你们 多久 给 我 发 个 新 的", "exchange_request"),
    ("这 件 外套 我 不 想 退 钱 给 我 换 个 黑色 的 就 行", "exchange_request"),
    ("换货 的话 我 这边 还 要 干 啥 吗", "exchange_request"),
    ("耳机 一边 没 声音 我 不 要 退款 换 一副 好 的", "exchange_request"),
    ("新 的 那个 啥时候 能 寄 出来 啊", "exchange_request"),
    # can I still return it, and the pickup
    ("都 过了 十 天 了 还 能 退 不", "return_request"),
    ("过了 七天 是不是 就 只能 修 了", "return_request"),
    ("退货 是 我 自己 寄 还是 你们 派 人 来 拿", "return_request"),
    ("取件 的 师傅 来 了 要 不要 原 包装", "return_request"),
    ("这 个 锅 我 用 不 上 帮 我 办 个 退货", "return_request"),
    ("售后 单 提交 三天 了 咋 没人 来 取件", "return_request"),
    # what the policy says is a knowledge-base question; 换 in other tasks stays there
    ("七天 无理由 退货 有 什么 要求", "product_question"),
    ("电信 的 卡 这个 手机 能 用 吗", "product_question"),
    ("我 要 换 个 收货 地址", "change_address"),
    ("发票 抬头 能 换 成 公司 吗", "invoice"),
])
def test_exchange_and_return_phrasings(nlu, text, intent):
    r = nlu.parse(text)
    assert r.intent == intent, r.explanation


@pytest.mark.parametrize("text", ["算了 还是 不 退 了", "那 算了 不 换 了", "还是 先 不 取消 了 吧", "不 退 了"])
def test_changing_ones_mind_at_a_confirmation_is_no(nlu, text):
    """"不退了" answers the pending confirmation; the exchange phrasings ("不退了 换个黑色的") must not pull it."""
    r = nlu.parse(text, prev_agent_text="确认请说是或按1，取消请说不是或按2。", expected="yesno")
    assert r.intent == "deny", r.explanation


def test_every_intent_name_is_one_of_the_contract(nlu):
    assert set(nlu.classifier.intents) == set(INTENTS)
    assert {"repeat", "main_menu"} <= set(ALL_INTENTS)


def test_self_correction_takes_what_follows(nlu):
    assert nlu.parse("我 要 退货 哦 不是 说错了 我 要 换货").intent == "exchange_request"
    assert nlu.parse("帮 我 查 物流 不对不对 我 是 想 开 发票").intent == "invoice"


def test_order_id_with_fillers_and_correction(nlu):
    r = nlu.parse("订单号 是 幺 三 八 嗯 零 零 幺 二 三 四 五 不是五是六")
    assert r.slots["order_id"] == "1380012346"
    assert r.intent == "other"  # gives information only, names no task


def test_order_id_inside_a_request(nlu):
    r = nlu.parse("帮 我 查 一下 订单 五 六 七 八 九 零 幺 的 物流")
    assert r.intent == "logistics"
    assert r.slots["order_id"] == "5678901"


def test_phone_tail_by_cue_or_expectation(nlu):
    assert nlu.parse("我 手机 尾号 是 三 四 五 六").slots["phone_tail"] == "3456"
    r = nlu.parse("拐 八 洞 两", expected="phone_tail")
    assert r.slots["phone_tail"] == "7802" and r.intent == "other"
    r = nlu.parse("幺三八 幺二三四 五六七八", expected="phone_tail")  # a whole mobile number: its last four
    assert r.slots["phone_tail"] == "5678"


@pytest.mark.parametrize(("text", "order_id"), [
    ("订单 幺零零零零零零零零零零四", "100000000004"),
    ("订单号 是 幺 零 零 零 零 零 零 零 零 零 零 二", "100000000002"),
    ("帮 我 查 一下 订单 二零二五 幺幺幺 零零零零 八 的 物流", "202511100008"),
])
def test_order_id_with_long_runs_of_one_digit(nlu, text, order_id):
    assert nlu.parse(text).slots["order_id"] == order_id
    assert nlu.parse(text, expected="order_id").slots["order_id"] == order_id


@pytest.mark.parametrize(("text", "expected", "tail"), [
    ("尾号是 八八八八", None, "8888"),
    ("手机 尾号 零 零 零 零", None, "0000"),
    ("尾号 0000", None, "0000"),
    ("八八八八", "phone_tail", "8888"),
    ("嗯嗯嗯 六六六六", "phone_tail", "6666"),
])
def test_phone_tail_of_one_repeated_digit(nlu, text, expected, tail):
    assert nlu.parse(text, expected=expected).slots["phone_tail"] == tail


def test_stutter_still_collapses_outside_numbers(nlu):
    r = nlu.parse("嗯嗯嗯 我我我 要 退货 订单 幺二三四五六")
    assert r.intent == "return_request" and r.slots["order_id"] == "123456"


def test_digits_expectation_keeps_short_answers(nlu):
    r = nlu.parse("三 五 七", expected="digits")
    assert r.slots["digits"] == "357"


def test_rating_by_voice(nlu):
    assert nlu.parse("五 分", expected="rating").slots["rating"] == 5
    assert nlu.parse("我 给 四 星", expected="rating").slots["rating"] == 4
    assert nlu.parse("三", expected="rating").slots["rating"] == 3
    assert nlu.parse("非常 不 满意", expected="rating").slots["rating"] == 1
    assert nlu.parse("还行 吧", expected="rating").slots["rating"] == 3
    assert "rating" not in nlu.parse("等 了 一分钟").slots


def test_date_quantity_product_reason(nlu):
    r = nlu.parse("那个 羽绒服 尺码 太 小 了 我 要 退 两 件 后天 来 取 行 吗", today=TODAY)
    assert r.intent == "return_request"
    assert r.slots["product"] == "羽绒服"
    assert r.slots["return_reason"] == "size"
    assert r.slots["quantity"] == 2
    assert r.slots["date"] == "2025-11-22"


def test_yes_no_after_a_question(nlu):
    q = "您是要退掉这件外套对吗"
    assert nlu.parse("对 就 退 这个", prev_agent_text=q).intent == "affirm"
    assert nlu.parse("不 不 我 再 想想", prev_agent_text=q, expected="yesno").intent == "deny"


def test_context_carry_over_from_the_previous_agent_turn(nlu):
    prev = "您的发票抬头可以修改为公司名称，税号也需要一起提供"
    r = nlu.parse("那 就 改 成 单位 的 吧", prev_agent_text=prev)
    assert r.intent == "invoice"
    assert r.explanation["context"]["prev_topic"] == "invoice"
    assert nlu.parse("那 物流 呢", prev_agent_text="您的订单已经付款，正在出库").intent == "logistics"


def test_garbage_and_empty_input_are_other_not_errors(nlu):
    for text in ["", "   ", "阿巴阿巴阿巴", "%%%###", "x" * 5000]:
        r = nlu.parse(text)
        assert isinstance(r, NluResult) and r.intent in ALL_INTENTS
    assert nlu.parse("").intent == "other"


def test_explanation_shows_tokens_rules_scores_and_features(nlu):
    r = nlu.parse("俺 的 快递 咋 还 没 到")
    x = r.explanation
    assert x["normalized"] == "我的快递怎么还没到"
    assert "快递" in x["tokens"]
    assert x["concepts"]["logistics"]
    assert next(iter(x["scores"])) == "logistics"
    assert any(f.startswith(("w:", "b:", "@")) for f, _w in x["top_features"])
    assert nlu.parse("转 人工").explanation["decided_by"] == "rule:human_agent"


def test_classify_line_shape_is_exact(nlu):
    line = result_json(nlu.parse("帮 我 查 下 物流"))
    assert list(line) == ["text", "intent", "confidence", "slots", "clarify", "second_intent"]
    assert 0 < line["confidence"] <= 1 and line["clarify"] == [] and line["second_intent"] is None
    json.dumps(line, ensure_ascii=False)  # JSON-serialisable slots


def test_catalogue_products_can_be_taught(nlu):
    nlu.add_products(["空气炸锅"])
    assert nlu.parse("空气炸锅 怎么 用").slots["product"] == "空气炸锅"


def test_model_cache_round_trip_gives_the_same_scores(tmp_path, monkeypatch, caplog):
    """A damaged cache is retrained, not fatal, and written again; the model loaded from it scores as the one
    trained (one training, ~5 CPU-s: the damaged cache is the fresh start)."""
    from ivr.dialog.nlu import classifier
    from ivr.lang import get_pack

    monkeypatch.setenv("IVR_CACHE_DIR", str(tmp_path))
    caplog.set_level(logging.INFO, logger=classifier.__name__)
    pack = get_pack("zh-CN")
    path = tmp_path / "nlu" / f"zh-CN-{classifier._data_hash(pack)}.pkl"  # where train() keeps this pack's model
    path.parent.mkdir()
    path.write_bytes(b"garbage")
    fresh = classifier.train(pack)
    assert "unreadable" in caplog.text and "trained on" in caplog.text, caplog.text
    assert list(tmp_path.glob("nlu/zh-CN-*.pkl")) == [path] and path.read_bytes() != b"garbage"
    caplog.clear()
    cached = classifier.train(get_pack("zh-CN"))
    assert "loaded from" in caplog.text and "trained on" not in caplog.text, caplog.text
    text = "我 的 退款 咋 还 没 到账"
    assert cached.predict(text).probs == fresh.predict(text).probs
    assert cached.predict(text).intent == "refund_status"
