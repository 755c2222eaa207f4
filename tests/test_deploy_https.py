"""Acceptance (issue 17): `ivr serve` behind the repo's nginx config (deploy/nginx/ivr.conf) with a self-signed
certificate; real Chromium opens the softphone over https (a secure context: the microphone is allowed) and
places a WebRTC call through the proxy; the bot's greeting is heard. Plain http is redirected to https, and the
service believes nginx's X-Forwarded-Proto (HSTS, Secure cookies)."""

from __future__ import annotations

import httpx
import pytest
from browser.chromium import wait_js
from browser.server import free_port
from deploy_peers import chromium_tls_page, ivr_serve, nginx, nginx_site, self_signed

from ivr.audio.files import write_wav
from ivr.audio.frames import AudioFrame

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]


async def test_chromium_calls_through_nginx_over_https(tmp_path):
    cert, key = self_signed(tmp_path)
    quiet_mic = write_wav(tmp_path / "quiet.wav", AudioFrame.silence(5.0, 48000))
    env = {"IVR_TRUSTED_PROXIES": "127.0.0.1"}  # nginx's X-Forwarded-Proto: https is believed
    with ivr_serve(tmp_path, env) as backend:
        https_port, http_port = free_port(), free_port()
        site = nginx_site(int(backend.rsplit(":", 1)[1]), https_port, http_port, cert, key)
        with nginx(tmp_path, site) as access_log:
            base = f"https://127.0.0.1:{https_port}"
            async with httpx.AsyncClient(verify=False) as http:
                plain = await http.get(f"http://127.0.0.1:{http_port}/phone")
                assert plain.status_code == 301 and plain.headers["location"].startswith("https://")
                health = await http.get(base + "/health")
                assert health.status_code == 200
                assert "max-age" in health.headers.get("strict-transport-security", "")  # proto came via nginx
                direct = await http.get(backend + "/health")
                assert "strict-transport-security" not in direct.headers  # not https without the proxy
            async with chromium_tls_page(quiet_mic, tmp_path / "profile") as page:
                await page.goto(f"{base}/phone")
                assert await page.evaluate("window.isSecureContext") is True
                await page.click("#call")
                try:
                    await wait_js(page, "window.ivrPhone.heardMs >= 500", 45000)
                    await wait_js(page, "window.ivrPhone.lines.some(l => l.who === 'bot')", 10000)
                except TimeoutError:
                    raise AssertionError(await page.evaluate("JSON.stringify(window.ivrPhone)")) from None
                assert await page.evaluate("window.ivrPhone.maxLevel") > 0.02
                await page.click("#hangup")
                await wait_js(page, "window.ivrPhone.state === 'ended'", 5000)
            log = access_log.read_text()
    assert "POST /api/calls/webrtc" in log and "GET /api/webrtc/config" in log
