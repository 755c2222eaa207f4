"""Acceptance (issue 17): ICE through coturn (deploy/coturn/turnserver.conf, real coturn) with host candidates
disabled: `ivr serve` hands both pages its ice_servers with TURN REST credentials made from turn_secret and the
'relay' policy; real Chromium's call is carried relay-to-relay through coturn on loopback. And the bot's WebRTC
sockets stay inside rtp_port_min..rtp_port_max (the firewall range)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from browser.chromium import wait_js
from browser.server import serve_in_thread
from deploy_peers import DEPLOY, chromium_tls_page, ivr_serve, need

from ivr.audio.files import write_wav
from ivr.audio.frames import AudioFrame
from ivr.bench.ports import reserve_ports
from ivr.config import load_settings
from ivr.telephony.webrtc.client import WebRtcClient

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]
SECRET = "test-static-auth-secret"


@contextlib.contextmanager
def coturn(tmp: Path, port: int, relay: tuple[int, int]) -> Iterator[Path]:
    """deploy/coturn/turnserver.conf on loopback (ports, secret, log changed; loopback peers allowed)."""
    binary = need("turnserver", "coturn")
    text = (DEPLOY / "coturn" / "turnserver.conf").read_text()
    log = tmp / "turn.log"
    swaps = {"listening-port=3478": f"listening-port={port}\nlistening-ip=127.0.0.1\nrelay-ip=127.0.0.1",
             "tls-listening-port=5349": "no-tls\nno-dtls", "external-ip=203.0.113.10": "",
             "static-auth-secret=change-this-long-random-secret": f"static-auth-secret={SECRET}",
             "min-port=49160": f"min-port={relay[0]}", "max-port=49999": f"max-port={relay[1]}",
             "log-file=syslog": f"log-file={log}\npidfile={tmp / 'turn.pid'}\nallow-loopback-peers"}
    for old, new in swaps.items():
        assert old in text, f"deploy/coturn/turnserver.conf no longer has {old!r}: update the test"
        text = text.replace(old, new)
    conf = tmp / "turnserver.conf"
    conf.write_text(text)
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            if proc.poll() is not None:
                raise AssertionError(f"coturn exited {proc.returncode}")
            if log.exists() and "Total General servers" in log.read_text(errors="replace"):
                break
            time.sleep(0.1)
        yield log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_chromium_call_relayed_through_coturn(tmp_path):
    turn_port = reserve_ports(2)  # coturn also listens on the next port (alt-listening-port)
    relay = (low := reserve_ports(10), low + 9)
    quiet_mic = write_wav(tmp_path / "quiet.wav", AudioFrame.silence(5.0, 48000))
    env = {"IVR_ICE_SERVERS": json.dumps([{"urls": f"turn:127.0.0.1:{turn_port}?transport=udp"}]),
           "IVR_TURN_SECRET": SECRET, "IVR_ICE_TRANSPORT_POLICY": "relay"}
    with coturn(tmp_path, turn_port, relay), ivr_serve(tmp_path, env) as url:
        # generous: at nice 19 beside the live lane the first request (it loads aioice) took over 5 s in CI
        cfg = httpx.get(url + "/api/webrtc/config", timeout=60).json()
        assert cfg["iceTransportPolicy"] == "relay"
        server = cfg["iceServers"][0]
        expiry, _, user = server["username"].partition(":")
        assert user and int(expiry) > time.time() + 3600  # TURN REST: time-limited, HMAC of the shared secret
        assert server["credential"] == base64.b64encode(
            hmac.new(SECRET.encode(), server["username"].encode(), hashlib.sha1).digest()).decode()
        async with chromium_tls_page(quiet_mic, tmp_path / "profile") as page:
            await page.goto(f"{url}/phone")
            await page.click("#call")
            try:
                await wait_js(page, "window.ivrPhone.heardMs >= 500", 45000)
            except TimeoutError:
                raise AssertionError(await page.evaluate("JSON.stringify(window.ivrPhone)")) from None
            path = await page.evaluate("window.ivrPhone.icePath()")
            await page.click("#hangup")
    assert path["local"] == "relay" and path["remote"] == "relay", path  # no host candidate carried the call
    # both relayed addresses are coturn's (its relay port range): the browser's allocation and the bot's
    assert relay[0] <= path["localPort"] <= relay[1] and relay[0] <= path["remotePort"] <= relay[1], path


async def test_bot_webrtc_sockets_stay_in_the_rtp_port_range(tmp_path):
    low = reserve_ports(5)
    settings = load_settings({"data_dir": str(tmp_path / "data"), "rtp_port_min": low, "rtp_port_max": low + 4})
    with serve_in_thread(settings) as (url, _app):
        clients = []
        try:
            for _ in range(2):
                client = WebRtcClient()
                answer = await client.call(url)
                clients.append(client)
                ports = [int(m) for m in re.findall(r"a=candidate:\S+ \d+ udp \d+ \S+ (\d+) typ host", answer["sdp"])]
                assert ports and all(low <= p <= low + 4 for p in ports), (ports, low)
                await client.wait_for(lambda c=client: c.voiced(), 20, "the greeting")
        finally:
            for client in clients:
                await client.hangup()
                await client.close()
