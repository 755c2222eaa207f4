"""Real deployment peers for tests: `ivr serve` as a process, nginx from deploy/nginx/ivr.conf, coturn from
deploy/coturn/turnserver.conf, a self-signed certificate (openssl), and Chromium that accepts it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from browser.chromium import CHROMIUM, chromium_flags
from browser.server import free_port

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def need(binary: str, package: str) -> str:
    path = shutil.which(binary) or (f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None)
    if not path:
        pytest.fail(f"{binary} is missing: install the Debian '{package}' package (./run setup does)")
    return path


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost and its key, made with openssl."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run([need("openssl", "openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@contextlib.contextmanager
def ivr_serve(tmp: Path, env: dict[str, str], *, port: int | None = None) -> Iterator[str]:
    """`ivr serve` (the installed console script) on loopback; yields its base URL; SIGTERM at the end."""
    port = port or free_port()
    ivr = Path(sys.executable).with_name("ivr")
    full = {**os.environ, "IVR_DATA_DIR": str(tmp / "data"), "IVR_SIP_PORT": "0", **env}
    log = (tmp / "ivr-serve.log").open("wb")
    proc = subprocess.Popen([str(ivr), "serve", "--host", "127.0.0.1", "--port", str(port)], env=full,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/health", timeout=1).status_code in (200, 503):
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("ivr serve did not start: " + (tmp / "ivr-serve.log").read_text()[-3000:])
            time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def nginx_site(backend_port: int, https_port: int, http_port: int, cert: Path, key: Path) -> str:
    """deploy/nginx/ivr.conf with only the ports and certificate paths changed (loopback, no IPv6)."""
    text = (DEPLOY / "nginx" / "ivr.conf").read_text()
    swaps = {"server 127.0.0.1:8080;": f"server 127.0.0.1:{backend_port};",
             "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
             "listen 80;": f"listen 127.0.0.1:{http_port};",
             "/etc/ssl/certs/ivr.example.com.pem": str(cert), "/etc/ssl/private/ivr.example.com.key": str(key)}
    for old, new in swaps.items():
        assert old in text, f"deploy/nginx/ivr.conf no longer has {old!r}: update the test"
        text = text.replace(old, new)
    return "\n".join(line for line in text.splitlines() if "listen [::]" not in line) + "\n"


@contextlib.contextmanager
def nginx(tmp: Path, site: str) -> Iterator[Path]:
    """nginx in the foreground with ``site`` inside a minimal main config; yields its access log."""
    binary = need("nginx", "nginx-light")
    (tmp / "nginx").mkdir(exist_ok=True)
    (tmp / "nginx" / "site.conf").write_text(site)
    main = tmp / "nginx" / "nginx.conf"
    n = tmp / "nginx"
    main.write_text(f"""user root;
worker_processes 1;
daemon off;
pid {n}/nginx.pid;
error_log {n}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {n}/access.log;
    client_body_temp_path {n}/body;
    proxy_temp_path {n}/proxy;
    include {n}/site.conf;
}}
""")
    check = subprocess.run([binary, "-t", "-c", str(main)], capture_output=True, text=True)
    assert check.returncode == 0, f"nginx -t rejects deploy/nginx/ivr.conf:\n{check.stderr}"
    proc = subprocess.Popen([binary, "-c", str(main)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.5)
        assert proc.poll() is None, (n / "error.log").read_text()[-2000:]
        yield n / "access.log"
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.asynccontextmanager
async def chromium_tls_page(fake_audio: Path, profile_dir: Path) -> AsyncIterator[object]:
    """A Chromium page (fake microphone) that accepts the self-signed certificate."""
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install the Debian 'chromium' package (./run setup does)")
    from playwright.async_api import async_playwright

    profile_dir.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        ctx = await pw.chromium.launch_persistent_context(
            str(profile_dir), executable_path=CHROMIUM, headless=True, ignore_https_errors=True,
            args=[*chromium_flags(fake_audio), "--ignore-certificate-errors"])
        try:
            yield ctx.pages[0] if ctx.pages else await ctx.new_page()
        finally:
            await ctx.close()
