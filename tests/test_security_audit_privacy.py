"""Security audit (masking), found through the running service: a web chat whose caller wrote these was stored in
``call_turns.caller_text`` as written, and so served by ``GET /api/stats/calls/{id}``, ``/api/stats/unrecognised``,
``/api/stats`` and ``ivr feedback export`` (see /work/notes/security-audit.md). The masking lives in
``ivr/privacy.py`` and the pack's ``privacy.yaml``; the gaps were xfails until they were masked. Ordinary caller
text that must come through (nearly) unchanged: ``tests/test_privacy_masking.py``."""

from __future__ import annotations

import pytest

from ivr.privacy import mask_text


@pytest.mark.parametrize(("text", "secret"), [
    pytest.param("我的电话是１３９１２３４５６７８", "１２３４５６７８", id="full-width digits"),
    pytest.param("我的号码 1 3 9 1 2 3 4 5 6 7 8", "5 6 7 8", id="digits one by one"),
    pytest.param("电话139.1234.5678", "5678", id="dotted"),
    pytest.param("收件人李娜，电话139****", "娜", id="收件人 name"),
    pytest.param("我是王小明", "小明", id="我是 name"),
    pytest.param("寄到世纪大道100号5号楼1203室", "1203", id="street without city"),
    pytest.param("上海浦东世纪大道100号", "100号", id="city without 市"),
    pytest.param("我的电话是13912345678", "5678", id="plain phone"),
    pytest.param("139-1234-5678", "5678", id="dashed phone"),
    pytest.param("幺三九幺二三四五六七八", "五六七八", id="spoken phone"),
    pytest.param("收货人李娜", "娜", id="收货人 name"),
    pytest.param("上海市浦东新区世纪大道100号", "100号", id="full address"),
])
def test_personal_data_does_not_survive_masking(text, secret):
    assert secret not in mask_text(text)
