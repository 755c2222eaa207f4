"""Text-channel rendering of the voice replies (ivr/dialog/render_text.py with the zh-CN pack's text_channel.yaml and
its number writer ivr/lang/zh_CN/text_numbers.py): money, dates, times and counts the voice spells out read as a
Chinese shop's chat writes them ("共2599元", "退款129.5元", "12月7日"), words that only contain a numeral stay
words ("查一下", "第一时间", "后四位"), and real chat conversations on the web chat API show the digits."""

from __future__ import annotations

import re
from datetime import date

import pytest
from fastapi.testclient import TestClient

from ivr.config import load_settings
from ivr.dialog.render_text import TextRules, rules_for
from ivr.lang import get_pack
from ivr.lang.zh_CN.text_numbers import cardinal, yuan
from ivr.services.shop.seed_rows import SHOP_TZ
from ivr.web.app import create_app

ZH = get_pack("zh-CN")
ORIGIN = {"Origin": "http://testserver"}
SPOKEN_MONEY = re.compile("[零一二两三四五六七八九十百千万]+(元|角)")


@pytest.fixture(scope="module")
def r() -> TextRules:
    return rules_for(ZH.dir, tuple((d, ZH.say_digits(d)) for d in "0123456789"))


@pytest.mark.parametrize(("voice", "chat"), [
    # money, as the flows say it (say_amount) and as the knowledge base writes it
    ("您的订单，共二千五百九十九元，正在运输途中。", "您的订单，共2599元，正在运输途中。"),
    ("您的退款一百二十九元五角已经退款成功", "您的退款129.5元已经退款成功"),
    ("退款一百二十九元零五分", "退款129.05元"),
    ("货款四千五百九十九元会在一到三个工作日内原路退回。", "货款4599元会在1-3个工作日内原路退回。"),
    ("满两千元减二百元", "满2000元减200元"),
    ("退款九角，差价五分", "退款0.9元，差价0.05元"),
    ("两块钱，一块五毛，五毛钱", "2元，1.5元，0.5元"),
    ("每消费一元积一分，一百积分可以抵一元。", "每消费1元积1分，100积分可以抵1元。"),
    ("订单满九十九元包邮，不满收取六元运费。", "订单满99元包邮，不满收取6元运费。"),
    # dates and clock times
    ("已于十二月七日签收", "已于12月7日签收"),
    ("预计二零二五年一月三日送达", "预计2025年1月3日送达"),
    ("每月十五号结算，三月份上新", "每月15号结算，3月份上新"),
    ("现货商品下午四点前付款当天发货", "现货商品下午4点前付款当天发货"),
    ("晚上六点以后", "晚上6点以后"),
    ("下午一点半，九点三十分，十点整", "下午1:30，9:30，10点整"),
    # counts and durations
    ("华为 Mate 60 Pro 雅丹黑三件", "华为 Mate 60 Pro 雅丹黑3件"),
    ("跑步鞋 赤兔6一件", "跑步鞋 赤兔6 1件"),  # a digit is not glued onto a name ending in a digit
    ("苹果 iPhone 15等十二件商品", "苹果 iPhone 15等12件商品"),
    ("专员会在二十四小时内联系您，请稍等十分钟", "专员会在24小时内联系您，请稍等10分钟"),
    ("全国联保一年，签收十五天内可以换新，一般三到五天送达", "全国联保1年，签收15天内可以换新，一般3-5天送达"),
    ("支持七天无理由退货", "支持7天无理由退货"),
    ("一到五分，五分最满意", "1-5分，5分最满意"),
    ("十二期免息，打八折，九五折，最高百分之二十", "12期免息，打8折，9.5折，最高20%"),
    ("送您两张优惠券，三次机会", "送您2张优惠券，3次机会"),
])
def test_spelled_numbers_read_as_digits(r: TextRules, voice: str, chat: str) -> None:
    assert r.text(voice) == chat


@pytest.mark.parametrize("words", [
    "我先帮您查一下，我们一起看看。",
    "万一不行，我们会第一时间联系您。",
    "请一位一位地输入订单号。",
    "为了保护您的信息安全，请输入下单手机号的后四位。",  # 后四位 is how a chat writes it too
    "十分抱歉给您带来不便。",
    "快一点，晚一点到也行，就是有一点贵。",
    "三五天，一两个，两三天，十几天，二十多天",  # approximate numbers stay words
    "第二件半价，买二送一，假一赔十，三包，不影响二次销售。",
    "免费换一次尺码，送您一张优惠券，您最近有一笔订单，一周内",
    "工作日白天、周末，还是周一到周五？",
    "唯一，统一，同一商品，星期三，初一",
    "一块儿，一样，一直，一般，一些，一切，一天到晚，一年四季",
    "海尔 十公斤 滚筒洗衣机，明朝那些事儿 全九册，三只松鼠",
    "请您打个分，五分是最高",  # a rating not followed by punctuation is not touched either
])
def test_words_with_numerals_stay_words(r: TextRules, words: str) -> None:
    assert r.text(words) == words


def test_product_names_are_kept_as_the_shop_wrote_them(r: TextRules) -> None:
    assert r.text("刀具十件套两件，共二百元", ["刀具十件套"]) == "刀具十件套2件，共200元"
    assert r.text("李宁 男款 跑步鞋 赤兔6一件", ["李宁 男款 跑步鞋 赤兔6"]) == "李宁 男款 跑步鞋 赤兔6 1件"


def test_order_numbers_and_phone_tails_still_become_digits(r: TextRules) -> None:
    said = f"您的订单{ZH.say_digits('100000000001')}，尾号{ZH.say_digits('5678')}，共{ZH.say_amount(699900)}。"
    assert r.text(said) == "您的订单100000000001，尾号5678，共6999元。"


@pytest.mark.parametrize("cents", [0, 5, 90, 95, 100, 1205, 12950, 12905, 19900, 259900, 1000000, 100000008, 12345678])
def test_every_amount_the_voice_says_reads_back(r: TextRules, cents: int) -> None:
    assert r.text(f"共{ZH.say_amount(cents)}") == f"共{yuan(cents)}元"


def test_every_date_and_count_the_voice_says_reads_back(r: TextRules) -> None:
    today = date(2025, 6, 15)
    for month in range(1, 13):
        for day in (1, 2, 9, 10, 11, 19, 20, 21, 28):
            d = date(2025 if month != 1 else 2026, month, day)
            spoken = ZH.say_date(d, today)
            want = f"{d.month}月{d.day}日" if d.year == today.year else f"{d.year}年{d.month}月{d.day}日"
            assert r.text(f"已于{spoken}签收") == f"已于{want}签收", spoken
    for n in range(2, 300):
        assert r.text(f"等{ZH.say_number(n)}件商品") == f"等{n}件商品"
        assert cardinal(ZH.say_number(n)) == n


def test_quick_reply_labels_read_like_the_text(r: TextRules) -> None:
    assert r.keypad_buttons("晚上六点以后请按3，七天无理由退货请按1") == [
        {"label": "晚上6点以后", "key": "3"}, {"label": "7天无理由退货", "key": "1"}]


# --- real conversations on the web chat API ---------------------------------------------------------------
@pytest.fixture(scope="module")
def client(tmp_path_factory):
    data = tmp_path_factory.mktemp("render-text") / "data"
    app = create_app(load_settings({"data_dir": str(data), "demo_data": True, "sip_port": 0}))
    with TestClient(app, base_url="http://testserver") as c:
        c.app_ = app
        yield c


def _chat(client, *turns: str | dict) -> list[str]:
    """One web chat: each turn typed (a str) or a quick reply ({"key": ...}); the bot's texts, one per turn."""
    s = client.post("/api/chat/sessions", json={}, headers=ORIGIN).json()
    url = f"/api/chat/sessions/{s['session_id']}/messages"
    out = []
    for t in turns:
        res = client.post(url, json={"text": t} if isinstance(t, str) else t,
                          headers={"X-Chat-Token": s["chat_token"], **ORIGIN})
        assert res.status_code == 200, res.text
        out.append(" ".join(m["text"] for m in res.json()["messages"] if m["role"] == "bot"))
    return out


def _shop(client):
    return client.app_.state.calls.parts.shop


def test_order_status_shows_the_total_count_and_delivery_date_in_digits(client) -> None:
    order = _shop(client).get_order("100000000002")  # delivered 3 days ago
    *_, said = _chat(client, "查订单 100000000002", order.phone[-4:])
    day = order.shipment.delivered_at.astimezone(SHOP_TZ).date()
    qty = sum(i.quantity for i in order.items)
    assert f"共{yuan(order.total_cents)}元" in said and f"{qty}件" in said, said
    assert f"已于{day.month}月{day.day}日签收" in said, said
    assert order.items[0].name in said and not SPOKEN_MONEY.search(said), said


def test_refund_status_shows_the_refund_in_digits(client) -> None:
    order = _shop(client).get_order("100000000009")  # cancelled after payment, refund completed
    refund = max(order.refunds, key=lambda f: f.created_at)
    *_, said = _chat(client, "我的退款到哪了 订单100000000009", order.phone[-4:])
    assert f"您的退款{yuan(refund.amount_cents)}元" in said and not SPOKEN_MONEY.search(said), said


def test_cancel_and_price_protection_show_amounts_and_working_days_in_digits(client) -> None:
    paid = _shop(client).get_order("100000000004")
    *_, said = _chat(client, "取消订单 100000000004", paid.phone[-4:], {"key": "1", "label": "是"})
    assert f"货款{yuan(paid.total_cents)}元会在1-3个工作日内原路退回" in said, said
    dropped = _shop(client).get_order("100000000007")  # the price dropped 200 yuan after payment
    *_, said = _chat(client, "申请保价 订单100000000007", dropped.phone[-4:], {"key": "1", "label": "是"})
    assert "差价200元" in said and not SPOKEN_MONEY.search(said), said


def test_knowledge_answers_show_amounts_and_days_in_digits(client) -> None:
    fee, warranty = _chat(client, "运费怎么算", "保修多久")
    assert "订单满99元包邮，不满收取6元运费" in fee and "7天无理由" in fee, fee
    assert "全国联保1年，签收15天内" in warranty, warranty
