"""The dashboard in headless Chromium over the same mix of real calls: log in, charts drawn with data (Chart.js
instances hold the numbers and their canvases have painted pixels), drill-down KPI -> calls -> transcript.
Screenshots are kept in test-artifacts/ (dashboard.png, dashboard-drill.png)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from browser.chromium import chromium_page, wait_js
from test_dashboard import PASSWORDS, mix  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(300)
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHARTS = ("chart-calls", "chart-containment", "chart-csat", "chart-csat-dist", "chart-latency", "chart-sentiment",
          "chart-intents")

CHART_STATE = """() => Object.fromEntries(Object.entries(window.ivrCharts).map(([id, c]) => {
  const cv = c.canvas, d = cv.getContext("2d").getImageData(0, 0, cv.width, cv.height).data;
  let painted = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) painted++;
  const values = c.data.datasets.flatMap((ds) => ds.data).filter((v) => v !== null && v !== undefined);
  return [id, { values: values.length, sum: values.reduce((a, v) => a + Math.abs(v), 0), painted,
                pixels: cv.width * cv.height, labels: c.data.labels.length }];
}))"""


async def test_dashboard_renders_charts_and_drills_down(mix, tmp_path):  # noqa: F811
    url, ids, _recs, data = mix
    from ivr.services.shop.lockout import LockoutStore

    guesses = LockoutStore(f"sqlite:///{data / 'ivr.db'}")  # somebody guessed 5 wrong phone tails for one order
    for i in range(5):
        guesses.record_failure("100000000009", caller_id="13700009999", call_id=f"guess-{i}")
    ARTIFACTS.mkdir(exist_ok=True)
    mic = tmp_path / "silence.wav"
    sf.write(mic, np.zeros(16000, dtype=np.int16), 16000)
    async with chromium_page(mic, tmp_path / "profile") as page:
        await page.set_viewport_size({"width": 1400, "height": 1000})
        await page.goto(f"{url}/dashboard")
        assert "/login" in page.url  # not logged in: sent to the login page
        await page.fill("input[name=username]", "sup1")
        await page.fill("input[name=password]", PASSWORDS["sup1"])
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{url}/dashboard")
        await wait_js(page, "window.ivrDashboard && window.ivrDashboard.ready", 30000)
        assert await page.evaluate("window.ivrDashboard.error || ''") == ""
        charts = await page.evaluate(CHART_STATE)
        assert sorted(charts) == sorted(CHARTS)
        for cid, st in charts.items():
            assert st["values"] > 0 and st["sum"] > 0, f"{cid} has no data: {st}"
            assert st["painted"] > 0.02 * st["pixels"], f"{cid} looks blank: {st}"
        assert charts["chart-calls"]["labels"] == 8  # 7 days -> 8 calendar days
        tiles = await page.eval_on_selector_all(
            ".kpi", "els => Object.fromEntries(els.map(e => [e.dataset.kpi, e.querySelector('.value').textContent]))")
        assert tiles["calls"] == "7" and tiles["containment"] == "42.9%" and tiles["fcr"] == "20.0%"
        assert tiles["csat"] == "3.00"
        assert tiles["offers"] == "—"  # no offer was made in the mix: no rate, not 0 %
        channels = await page.eval_on_selector_all(
            "#channel-kpis tbody tr", "els => els.map(e => [e.dataset.channel, e.children[1].textContent])")
        assert channels == [["voice-sip", "0"], ["voice-webrtc", "1"], ["chat", "6"], ["webhook", "0"]]
        rows = await page.eval_on_selector_all("#unrecognised tbody tr td:first-child", "els => els.map(e => e.textContent)")
        assert rows[0] == "阿巴阿巴"
        locked = await page.eval_on_selector_all("#locked-orders tbody tr td", "els => els.map(e => e.textContent)")
        assert locked[:2] == ["100000000009", "5"], locked  # the lock shows on the dashboard
        await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

        await page.click(".kpi[data-kpi=containment]")
        await page.wait_for_selector("#drill:not([hidden]) #calls tbody tr")
        listed = await page.eval_on_selector_all("#calls tbody tr", "els => els.map(e => e.dataset.call)")
        assert set(listed) == {ids["c1"], ids["c5"], ids["voice"]}
        await page.click(f"#calls tbody tr[data-call='{ids['c5']}']")
        await page.wait_for_selector("#transcript:not([hidden]) #transcript-turns li")
        transcript = await page.inner_text("#transcript")
        assert "你们保修多久" in transcript and "很不满意" in transcript and ids["c5"] in transcript
        await page.screenshot(path=str(ARTIFACTS / "dashboard-drill.png"), full_page=True)

        await page.click("#channel-kpis tbody tr[data-channel=chat]")  # a channel row filters the whole page
        await wait_js(page, "window.ivrDashboard.stats && window.ivrDashboard.stats.channel === 'chat'", 30000)
        assert await page.input_value("#channel") == "chat"
        assert await page.inner_text(".kpi[data-kpi=calls] .value") == "6"
        assert "在线聊天" in await page.inner_text("#status")
