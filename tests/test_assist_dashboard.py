"""The dashboard's agent-assist figures (suggestions shown / used / ignored, use rate, per kind, one-click actions)
over records seeded through the records store, worked out by hand; /api/stats ``assist`` and the page in real
Chromium, for all channels and for the chat channel picked from the per-channel table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from browser.chromium import chromium_page, wait_js
from browser.server import serve_in_thread

from ivr.audio.files import write_wav
from ivr.audio.frames import AudioFrame
from ivr.config import load_settings
from ivr.services.agents import AccountStore
from ivr.services.migrate import ensure_schema
from ivr.services.records import CallRecord, RecordStore

pytestmark = pytest.mark.timeout(180)


def _rec(cid: str, channel: str, outcome: str, assist: dict | None, actions: list[str] = ()) -> CallRecord:
    start = datetime.now(UTC) - timedelta(hours=1)
    rec = CallRecord(call_id=cid, channel=channel, started_at=start, outcome=outcome, agent_id="ag1",
                     ended_at=None if outcome == "in_progress" else start + timedelta(seconds=120))
    rec.add_turn("start", at=start, bot_text="您好", intent="greeting")
    if assist is not None:
        rec.extra["assist"] = assist
    if actions:
        rec.extra["agent_actions"] = [{"action": a, "order_id": "100000000002", "agent": "wang.li"} for a in actions]
    return rec


def seed(url: str) -> None:
    ensure_schema(url)
    store = RecordStore(url)
    for r in [
        # a call: 3 shown, the flow step used (its return created), the kb answer dismissed, the order left alone
        _rec("a1", "sip", "transferred", {"shown": ["order", "kb:seven_day_return", "flow:return_request"],
                                          "used": ["flow:return_request"], "dismissed": ["kb:seven_day_return"]},
             ["create_return"]),
        # a chat: 2 shown, both used
        _rec("a2", "chat", "transferred", {"shown": ["order", "kb:invoice"], "used": ["order", "kb:invoice"],
                                           "dismissed": []}),
        _rec("a3", "webrtc", "in_progress", {"shown": ["order"], "used": [], "dismissed": []}),  # not finished
        _rec("a4", "webrtc", "self_served", None),  # the bot served it: no agent, no suggestions
    ]:
        store.save(r)


async def test_dashboard_shows_the_assist_figures(tmp_path):
    settings = load_settings({"data_dir": str(tmp_path / "d")})
    seed(settings.database_url)
    AccountStore(settings.database_url).add("lead", role="supervisor", password="lead-pass-1")
    silence = write_wav(tmp_path / "s.wav", AudioFrame(b"\x00\x00" * 16000, 16000))
    with serve_in_thread(settings) as (url, _app):
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            assert (await http.post("/api/login", json={"username": "lead", "password": "lead-pass-1"})).is_success
            a = (await http.get("/api/stats", params={"period": "7d"})).json()["assist"]
            chat = (await http.get("/api/stats", params={"period": "7d", "channel": "chat"})).json()["assist"]
        # by hand: shown 3 + 2 = 5, used 1 + 2 = 3, ignored 5 - 3 = 2 (one of them dismissed), rate 3 / 5
        assert (a["calls"], a["shown"], a["used"], a["ignored"], a["dismissed"]) == (2, 5, 3, 2, 1)
        assert a["use_rate"] == pytest.approx(0.6) and a["actions"] == {"create_return": 1}
        assert {k: (v["shown"], v["used"], v["ignored"]) for k, v in a["by_kind"].items()} == {
            "flow": (1, 1, 0), "kb": (2, 1, 1), "order": (2, 1, 1)}
        assert (chat["shown"], chat["used"], chat["ignored"], chat["use_rate"]) == (2, 2, 0, 1.0)

        async with chromium_page(silence, tmp_path / "p") as page:
            await page.goto(f"{url}/dashboard")
            await page.fill("input[name=username]", "lead")
            await page.fill("input[name=password]", "lead-pass-1")
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{url}/dashboard")
            await wait_js(page, "document.querySelector('#assist-rate .value')", 20000)
            assert await page.text_content("#assist-shown .value") == "5"
            assert "2 通人工联络" in await page.text_content("#assist-shown .sub")
            assert await page.text_content("#assist-used .value") == "3"
            assert "创建退货 1" in await page.text_content("#assist-used .sub")
            assert await page.text_content("#assist-ignored .value") == "2"
            assert "主动忽略 1" in await page.text_content("#assist-ignored .sub")
            assert await page.text_content("#assist-rate .value") == "60.0%"
            kb = await page.text_content("#assist-kinds li[data-kind=kb]")
            assert "知识库答案" in kb and "展示 2" in kb and "采用 1" in kb and "50.0%" in kb
            # a channel row filters the page: the chat's suggestions were all used
            await page.click("#channel-kpis tr[data-channel=chat]")
            await wait_js(page, "document.querySelector('#assist-rate .value').textContent === '100.0%'", 10000)
            assert await page.text_content("#assist-shown .value") == "2"
            assert await page.text_content("#assist-ignored .value") == "0"
