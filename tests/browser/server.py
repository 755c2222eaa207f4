"""Run the real app under uvicorn in a background thread on a free loopback port (its own event loop)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import httpx
import uvicorn

from ivr.bench.ports import reserve_port
from ivr.config import Settings
from ivr.web.app import create_app


def free_port() -> int:
    """A loopback port held for this test process (``ivr.bench.ports``: no race with parallel workers)."""
    return reserve_port()


def free_udp_port() -> int:
    """A loopback port for UDP (the SIP gateway adds TCP on the same number: it is free for both)."""
    return reserve_port()


@contextlib.contextmanager
def serve_in_thread(settings: Settings, *, manager=None, shutdown_grace_s: float = 5.0,
                    sip: bool = False) -> Iterator[tuple[str, object]]:
    """Yields (base_url, app); the server stops (graceful shutdown included) when the block ends.

    SIP is off (sip_port=0) so test servers never fight over 5060; ``sip=True`` gives the gateway a free
    loopback port (``app.state.sip.port``). Like ``ivr serve``, uvicorn's own proxy-header rewriting is off."""
    port = free_port()
    settings = settings.model_copy(update={"host": "127.0.0.1", "port": port,
                                           "sip_port": free_udp_port() if sip else 0})
    app = create_app(settings, manager=manager, shutdown_grace_s=shutdown_grace_s)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           proxy_headers=False))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/health", timeout=1).status_code in (200, 503):
                break
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.1)
    try:
        yield url, app
    finally:
        server.should_exit = True
        thread.join(timeout=60)
