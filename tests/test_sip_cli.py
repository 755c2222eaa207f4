"""The interface of issue 5: `ivr serve --sip-port N` (also IVR_SIP_PORT; 0 disables SIP), binding SIP to the same
--host. Each test runs the real `python -m ivr serve` process and reaches it with real sipp on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from browser.server import free_port, free_udp_port

from tests.sip.peers import run_sipp

ROOT = Path(__file__).resolve().parent.parent


@contextlib.asynccontextmanager
async def serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    """`ivr serve --host 127.0.0.1 --port P ...` in its own process; yields (base_url, /health json)."""
    http = free_port()
    environ = {k: v for k, v in os.environ.items() if k not in ("IVR_SIP_PORT", "IVR_PORT", "IVR_HOST", "IVR_CONFIG")}
    # IVR_DEMO_DATA=0: `ivr serve`'s own default (the suite's is the demo shop); no test here reads orders
    environ.update({"IVR_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT), "IVR_DEMO_DATA": "0",
                    **(env or {})})
    log = open(tmp_path / f"serve-{http}.log", "wb")  # closed in finally
    proc = subprocess.Popen([sys.executable, "-m", "ivr", "serve", "--host", "127.0.0.1", "--port", str(http),
                             *args], cwd=tmp_path, env=environ, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http}"
    try:
        health = None
        async with httpx.AsyncClient(timeout=2) as client:
            for _ in range(1200):
                assert proc.poll() is None, (tmp_path / f"serve-{http}.log").read_text("utf-8", "replace")[-3000:]
                with contextlib.suppress(httpx.HTTPError):
                    r = await client.get(url + "/health")
                    if r.status_code == 200:
                        health = r.json()
                        break
                await asyncio.sleep(0.1)
        assert health is not None, "ivr serve did not come up in 120 s"
        yield url, health
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.get_running_loop().run_in_executor(None, proc.wait, 40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def test_serve_sip_port_flag_answers_a_sipp_call(tmp_path):
    sip = free_udp_port()
    async with serve(tmp_path, "--sip-port", str(sip)) as (_url, health):
        assert health["sip"]["enabled"] and health["sip"]["port"] == sip, health["sip"]
        assert set(health["sip"]["transports"]) == {"udp", "tcp"}, health["sip"]
        assert not _udp_free(sip)  # bound on --host 127.0.0.1
        res = await run_sipp(f"127.0.0.1:{sip}", scenario="uac", workdir=tmp_path / "sipp", timeout=30)
        assert res.rc == 0 and res.successful == 1, res


async def test_ivr_sip_port_env_and_zero_disables(tmp_path):
    sip = free_udp_port()
    (tmp_path / "a").mkdir()
    async with serve(tmp_path / "a", env={"IVR_SIP_PORT": str(sip)}) as (_url, health):
        assert health["sip"]["enabled"] and health["sip"]["port"] == sip, health["sip"]
        res = await run_sipp(f"127.0.0.1:{sip}", scenario="uac_options.xml", workdir=tmp_path / "sipp", timeout=15)
        assert res.rc == 0 and res.successful == 1, res
    # --sip-port 0 wins over the environment and disables SIP: nothing listens on the port
    (tmp_path / "b").mkdir()
    async with serve(tmp_path / "b", "--sip-port", "0", env={"IVR_SIP_PORT": str(sip)}) as (_url, health):
        assert health["sip"] == {"enabled": False}, health
        assert _udp_free(sip)
