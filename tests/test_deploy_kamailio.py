"""A call through a record-routing SIP proxy (deploy/kamailio/kamailio.cfg, real Kamailio) to the bot's SIP port
(real sipp as the caller): the bot's 200 OK carries the proxy's Record-Route, and the in-dialog requests of both
sides (the caller's ACK and BYE, the bot's own BYE) cross the proxy along the route set."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from browser.server import serve_in_thread
from sip.peers import free_port, run_sipp

from ivr.bench.ports import reserve_ports
from ivr.config import load_settings

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]
CFG = Path(__file__).resolve().parents[1] / "deploy" / "kamailio" / "kamailio.cfg"


def _kamailio(tmp: Path, port: int, bot_port: int) -> tuple[subprocess.Popen, Path]:
    if not shutil.which("kamailio"):
        pytest.fail("kamailio is missing: install the Debian 'kamailio' package (./run setup does)")
    log = tmp / "kamailio.log"
    proc = subprocess.Popen(
        ["kamailio", "-f", str(CFG), "-DD", "-E", "-w", str(tmp), "-P", str(tmp / "kamailio.pid"),
         "-A", f"LISTEN=udp:127.0.0.1:{port}", "-A", f'IVR_DST="sip:127.0.0.1:{bot_port}"'],
        stdout=log.open("wb"), stderr=subprocess.STDOUT)
    return proc, log


async def _wait_listening(log: Path, proc: subprocess.Popen) -> None:
    for _ in range(100):
        if proc.poll() is not None:
            raise AssertionError(f"kamailio exited {proc.returncode}: {log.read_text()[-2000:]}")
        if "INFO: <core>" in log.read_text() or "listening on" in log.read_text():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("kamailio did not start: " + log.read_text()[-2000:])


@pytest.mark.parametrize("scenario,who_hangs_up", [("uac_proxy_caller_bye.xml", "caller"),
                                                   ("uac_proxy_bot_bye.xml", "bot")])
async def test_call_through_record_routing_proxy(tmp_path, scenario, who_hangs_up):
    overrides = {"data_dir": str(tmp_path / "data")}
    if who_hangs_up == "bot":
        overrides["max_call_s"] = 4.0  # the bot ends the call itself: its BYE must go back through the proxy
    settings = load_settings(overrides)
    with serve_in_thread(settings, sip=True) as (_url, app):
        bot_port = app.state.sip.port
        proxy_port = free_port()
        proc, log = _kamailio(tmp_path, proxy_port, bot_port)
        try:
            await _wait_listening(log, proc)
            res = await run_sipp(f"127.0.0.1:{proxy_port}", scenario=scenario, workdir=tmp_path, timeout=40,
                                 extra=["-s", "ivr"])
            await asyncio.sleep(0.5)
        finally:
            proc.terminate()
            proc.wait(10)
        text = log.read_text()
        assert res.successful == 1, f"{res}\nkamailio:\n{text[-3000:]}"
    routed = re.findall(r"in-dialog (\w+) from 127\.0\.0\.1:(\d+)", text)
    assert "refused" not in text, text[-2000:]
    caller_side = {m for m, port in routed if int(port) != bot_port}
    bot_side = {m for m, port in routed if int(port) == bot_port}
    assert "ACK" in caller_side, text[-2000:]
    if who_hangs_up == "caller":
        assert "BYE" in caller_side, text[-2000:]
    else:
        assert "BYE" in bot_side, text[-2000:]


async def test_sip_binds_its_own_address(tmp_path):
    """sip_host: SIP (and its RTP) on another address than HTTP; a call to that address is answered."""
    settings = load_settings({"data_dir": str(tmp_path / "data"), "sip_host": "127.0.0.2"})
    with serve_in_thread(settings, sip=True) as (url, app):
        port = app.state.sip.port
        assert url.startswith("http://127.0.0.1:")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", port))  # free on HTTP's address: SIP is not there
        res = await run_sipp(f"127.0.0.2:{port}", scenario="uac_alaw.xml", workdir=tmp_path, timeout=30,
                             local_ip="127.0.0.3", extra=["-s", "ivr"])
        assert res.successful == 1, str(res)
        assert app.state.sip.counters["answered"] == 1


async def test_sip_rtp_stays_in_the_rtp_port_range(tmp_path):
    """rtp_port_min..rtp_port_max: the bot's RTP/RTCP pair of a SIP call is inside the firewall range."""
    low = reserve_ports(10, align=2)
    settings = load_settings({"data_dir": str(tmp_path / "data"), "rtp_port_min": low, "rtp_port_max": low + 9})
    with serve_in_thread(settings, sip=True) as (_url, app):
        gateway = app.state.sip
        call = asyncio.create_task(run_sipp(f"127.0.0.1:{gateway.port}", scenario="uac_alaw.xml", workdir=tmp_path,
                                            timeout=30, extra=["-s", "ivr"]))
        seen: set[int] = set()
        while not call.done():
            for stream in list(gateway._streams):
                seen.update((stream.local_port, stream.rtcp_port))
            await asyncio.sleep(0.2)
        res = call.result()
    assert res.successful == 1, str(res)
    assert seen and all(low <= p <= low + 9 for p in seen), (seen, low)
