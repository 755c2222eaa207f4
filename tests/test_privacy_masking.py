"""Free-text masking (``ivr.privacy.mask_text``) beyond the security audit's cases (tests/test_security_audit_privacy.py):
the exact masked forms (a phone keeps its first three digits, an address up to what names the district, a name its
surname), and ordinary caller text that must come through unchanged: masking also runs on utterances kept for
analysis (unrecognised-utterance lists, dashboards), and on the shop's order, waybill and refund numbers."""

from __future__ import annotations

from datetime import date

import pytest

from ivr.privacy import mask_text


@pytest.mark.parametrize(("text", "masked"), [
    ("我的电话是１３９１２３４５６７８", "我的电话是139****"),
    ("电话１３９－１２３４－５６７８", "电话139****"),
    ("我的号码 1 3 9 1 2 3 4 5 6 7 8", "我的号码 139****"),
    ("号码是1-3-9-1-2-3-4-5-6-7-8好吧", "号码是139****好吧"),
    ("电话139.1234.5678", "电话139****"),
    ("+86 139 1234 5678", "139****"),
    ("收件人李娜，电话139****", "收件人李*，电话139****"),
    ("收件人是李娜", "收件人是李*"),
    ("收件人李娜电话13912345678", "收件人李*电话139****"),
    ("我是王小明", "我是王**"),
    ("我是王小明想查一下订单", "我是王**想查一下订单"),
    ("你好 我就是张伟", "你好 我就是张*"),
    ("我是欧阳娜娜", "我是欧***"),
    ("寄到世纪大道100号5号楼1203室", "寄到****"),
    ("上海浦东世纪大道100号", "上海浦东****"),
    ("送到南京东路一百号", "送到****"),
    ("上海市浦东新区世纪大道100号", "上海市浦东新区****"),
    ("发票发到我邮箱zhangwei88@qq.com谢谢", "发票发到我邮箱z***@qq.com谢谢"),
    ("邮箱是 Li.Na+invoice@example.com.cn 。", "邮箱是 L***@example.com.cn 。"),
    ("身份证号110101199003071234", "身份证号110****"),
    ("身份证 11010519851231002X 开个人发票", "身份证 110**** 开个人发票"),
])
def test_masked_forms(text, masked):
    assert mask_text(text) == masked
    assert mask_text(masked) == masked  # writers mask again at write time: nothing more goes


ORDINARY = [
    "我是想查一下订单", "我是说换货", "我是会员", "我是在京东买的", "我是老客户了", "我是第一次买", "我是昨天下的单",
    "我是上周买的", "我是给我妈买的", "我是用微信付的", "我是新用户", "我是本人", "我是收货人", "我是来退货的",
    "我是顾客", "我是金牌会员", "我是高级会员", "我是白金会员", "我是苏州的", "我是江苏的", "我是成都的", "我是周一买的",
    "我是申请了退货", "我是余额支付的", "我是不是要先退货", "我是要退款", "我是华为手机", "我是李宁的鞋子",
    "您好，欢迎致电优品商城，我是智能客服小优。请问有什么可以帮您？",
    "收货人写错了 应该是王女士", "收货人电话写错了一位 帮我改下", "能改一下收货人的名字吗", "收件人改成我", "收件人和电话都要改",
    "联系人电话打不通",
    "一共199.00元", "退款1399元到了没有", "12月6号买的", "买了3件", "下午3点送到", "预计12月8号下午3点前送达", "2026.12.06下的单",
    "快递放在3号柜", "地铁2号线", "我住5楼", "在路上走了3天", "第2件半价",
    "from sip:bot@127.0.0.1:5060", "邮件里@一下客服", "序列号123456789012345678",  # no TLD; no birth date in it
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_caller_text_stays(text):
    assert mask_text(text) == text


def _shop_numbers() -> list[str]:
    from ivr.services.shop.seed import build_demo

    rows = build_demo(7, date(2026, 12, 6), n_customers=60, n_orders=400)
    return sorted({o["order_id"] for o in rows.orders} | {s["tracking_no"] for s in rows.shipments}
                  | {r["refund_id"] for r in rows.refunds} | {p["payment_id"] for p in rows.payments})


def test_the_shops_numbers_are_not_masked_as_phones():
    """Order numbers (12 digits), waybills (letters + digits), refund and payment numbers, written as they are or
    digit by digit, after the words that ask for them. A landline-shaped one (860451709776: +86 0451 ...) is kept
    after 订单号/单号 or glued to letters; a mobile-shaped number is masked even there."""
    numbers = _shop_numbers()
    assert len(numbers) > 500 and "100000000001" in numbers
    assert any(n.startswith("JDX0") for n in numbers)  # a waybill whose digits start like a landline
    for n in [*numbers, "860451709776"]:
        for said in (f"订单号{n}", f"我的订单号是 {n}", f"单号 {n} 到哪了", f"订单号 {' '.join(n)}"):
            assert mask_text(said) == said
    assert mask_text("订单号13912345678") == "订单号139****"
    assert mask_text("我的订单号是 1 3 9 1 2 3 4 5 6 7 8") == "我的订单号是 139****"
