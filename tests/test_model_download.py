"""Model download against a real local HTTP server (127.0.0.1): checksum, resume with Range, `ivr serve` first start.

No outside traffic: "no network" is the model base URL pointing at a closed loopback port.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from ivr.asr.download import DownloadError, fetch
from ivr.asr.models import registry_entry
from ivr.bench.ports import reserve_port
from tests.conftest import wait_healthy


class _Server(http.server.ThreadingHTTPServer):
    files: dict[str, bytes]
    cut_after: int | None  # first full-file response stops after this many bytes (connection dropped)
    ranges: list[str]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        rng = self.headers.get("Range")
        self.server.ranges.append(rng or "")
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        part = body[start:]
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        if self.server.cut_after is not None and not rng:
            self.wfile.write(part[: self.server.cut_after])
            self.wfile.flush()
            self.server.cut_after = None
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(part)


@pytest.fixture
def server():
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.files, srv.cut_after, srv.ranges = {}, None, []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(srv: _Server, path: str) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}{path}"


def _model_zip(top: str = "tiny-model") -> bytes:
    """A small zip with a Vosk model's layout (not a working model: enough for install and verify)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{top}/am/final.mdl", os.urandom(200_000))
        z.writestr(f"{top}/conf/model.conf", "--sample-frequency=16000\n")
        z.writestr(f"{top}/graph/HCLG.fst", os.urandom(100_000))
    return buf.getvalue()


def test_right_checksum_installs_wrong_checksum_leaves_nothing(server, tmp_path):
    data = _model_zip()
    server.files["/m.zip"] = data
    good = hashlib.sha256(data).hexdigest()
    dest = tmp_path / ".m.download"
    assert fetch(_url(server, "/m.zip"), dest, name="m", expected_bytes=len(data), expected_sha256=good) == good
    assert dest.read_bytes() == data
    dest.unlink()
    with pytest.raises(DownloadError, match="does not match"):
        fetch(_url(server, "/m.zip"), dest, name="m", expected_bytes=len(data), expected_sha256="0" * 64)
    assert not dest.exists()
    with pytest.raises(DownloadError, match="wrong file"):
        fetch(_url(server, "/m.zip"), dest, name="m", expected_bytes=len(data) + 1)
    assert not dest.exists()


def test_interrupted_transfer_resumes_with_range(server, tmp_path):
    data = _model_zip()
    server.files["/m.zip"] = data
    server.cut_after = 123_456
    dest = tmp_path / ".m.download"
    with pytest.raises(DownloadError, match="the next attempt resumes"):
        fetch(_url(server, "/m.zip"), dest, name="m", expected_bytes=len(data))
    assert dest.stat().st_size == 123_456
    digest = fetch(_url(server, "/m.zip"), dest, name="m", expected_bytes=len(data),
                   expected_sha256=hashlib.sha256(data).hexdigest())
    assert server.ranges == ["", "bytes=123456-"]  # only the missing tail was asked for
    assert digest == hashlib.sha256(data).hexdigest() and dest.read_bytes() == data


def _ivr(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ivr", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_models_pull_url_with_progress_installs_atomically(server, tmp_path):
    server.files["/tiny.zip"] = _model_zip()
    models = tmp_path / "models"
    r = _ivr("models", "pull", "tiny", "--url", _url(server, "/tiny.zip"), env={"IVR_MODELS_DIR": str(models)})
    assert r.returncode == 0, r.stderr
    assert "downloading tiny" in r.stderr and "installed tiny" in r.stderr
    assert sorted(p.name for p in models.iterdir()) == ["tiny"]
    assert (models / "tiny" / "am" / "final.mdl").stat().st_size == 200_000


def _free_port() -> int:
    return reserve_port()  # held for this test process: no race with parallel workers


def _serve_until_up(env: dict[str, str], tmp_path: Path) -> tuple[str, int]:
    """`ivr serve --fetch-model` on a free port; returns (stderr, HTTP status of /health) once it answers, then stops it."""
    port = _free_port()
    err_path = tmp_path / "serve.err"
    with err_path.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "ivr", "serve", "--fetch-model", "--port", str(port),
                                 "--sip-port", "0"], stdout=subprocess.DEVNULL, stderr=err,
                                env={**os.environ, "IVR_MODELS_DIR": str(tmp_path / "models"),
                                     "IVR_DEMO_DATA": "0", **env})  # no demo shop: nothing here reads orders
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code
                break
            except httpx.HTTPError:
                assert proc.poll() is None, err_path.read_text()
                assert time.monotonic() < deadline, "ivr serve did not start"
                time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return err_path.read_text(), status


def test_serve_offline_without_model_starts_in_keypad_mode_and_says_how(tmp_path):
    closed = _free_port()  # nothing listens here: the same as no network
    err, status = _serve_until_up({"IVR_MODEL_BASE_URL": f"http://127.0.0.1:{closed}/"}, tmp_path)
    assert status == 200
    lines = [ln for ln in err.splitlines() if ln.startswith("ivr serve:")]
    assert len(lines) == 1, err
    assert "offline" in lines[0] and "keypad mode" in lines[0] and "ivr models pull zh-CN-small" in lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_serve_first_start_refuses_a_wrong_model_file(server, tmp_path):
    info = registry_entry("zh-CN-small")
    server.files[f"/{info.name}.zip"] = b"\0" * info.bytes  # right size, wrong sha256
    err, status = _serve_until_up({"IVR_MODEL_BASE_URL": _url(server, "/")}, tmp_path)
    assert status == 200
    assert "does not match" in err and "keypad mode" in err, err
    assert server.ranges == [""]
    assert not any((tmp_path / "models").iterdir()), "nothing half-installed, no partial file kept"


def test_run_serve_offline_starts_in_keypad_mode_with_one_line(tmp_path):
    """`./run serve` itself (setup already done by ./run test: it installs nothing) with the network off."""
    root = Path(__file__).resolve().parent.parent
    venv = Path(os.environ.get("IVR_VENV", root / ".venv"))
    stamp = (venv / ".ivr-installed").read_text().split()
    want = hashlib.sha256((root / "pyproject.toml").read_bytes()).hexdigest()[:16]
    assert stamp and stamp[0] == want, "run `./run setup` first: this test must not install anything"
    port, closed = _free_port(), _free_port()
    err_path = tmp_path / "run.err"
    env = {**os.environ, "IVR_VENV": str(venv), "IVR_DATA_DIR": str(tmp_path / "data"),
           "IVR_MODELS_DIR": str(tmp_path / "models"), "IVR_MODEL_BASE_URL": f"http://127.0.0.1:{closed}/",
           "IVR_DEMO_DATA": "0"}
    with err_path.open("w") as err:
        proc = subprocess.Popen([str(root / "run"), "serve", "--port", str(port), "--sip-port", "0"],
                                stdout=subprocess.DEVNULL, stderr=err, env=env, start_new_session=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, err_path.read_text)
        orders = _ivr("db", "orders", "--json", "--limit", "1", env={"IVR_DATA_DIR": str(tmp_path / "data")})
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    err = err_path.read_text()
    assert "[setup]" not in err, err  # nothing installed
    lines = [ln for ln in err.splitlines() if ln.startswith("ivr serve:")]
    assert len(lines) == 1 and "offline" in lines[0] and "ivr models pull zh-CN-small" in lines[0], err
    assert orders.returncode == 0 and len(orders.stdout.splitlines()) == 1  # first start: the demo shop
