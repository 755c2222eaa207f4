"""Resumable, checked model downloads (HTTP Range) and where registry models are downloaded from.

A download goes to a hidden ``.<name>.download`` file beside the models. An interrupted transfer keeps what
arrived, and the next attempt asks only for the rest (``Range: bytes=N-``); a server that ignores Range sends
the whole file again. When the size or sha256 is wrong the partial file is deleted: nothing half-installed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from ivr.config import Settings

BASE_URL = "https://alphacephei.com/vosk/models/"  # the Vosk registry (``settings.model_base_url`` may move it)

ProgressFactory = Callable[[str, int | None], Callable[[int], None]]


class DownloadError(Exception):
    """The download failed; the message is one line for the operator."""


def fetch(url: str, dest: Path, *, name: str, expected_bytes: int | None = None,
          expected_sha256: str | None = None, progress: ProgressFactory | None = None) -> str:
    """Download ``url`` into ``dest`` (resuming a partial ``dest``), check size and sha256; return the sha256.

    On a network failure the bytes received so far stay in ``dest`` for the next attempt; on a size or checksum
    mismatch ``dest`` is removed.
    """
    import httpx

    host = urlparse(url).hostname or url
    have = dest.stat().st_size if dest.is_file() else 0
    if expected_bytes is not None and have > expected_bytes:
        dest.unlink()
        have = 0
    h = hashlib.sha256()
    if have:
        with dest.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    headers = {"Accept-Encoding": "identity"}  # raw bytes are stored and resumed: no transfer compression
    if have:
        headers["Range"] = f"bytes={have}-"
    got = have
    try:
        with httpx.stream("GET", url, headers=headers, follow_redirects=True,
                          timeout=httpx.Timeout(30.0, connect=10.0)) as r:
            if r.status_code == 416 and have and have == expected_bytes:
                pass  # already complete: only the checks below remain
            elif r.status_code not in (200, 206):
                raise DownloadError(f"download of {url} failed: HTTP {r.status_code}")
            else:
                if r.status_code == 200 and have:  # no Range support: start over
                    h, got, have = hashlib.sha256(), 0, 0
                length = int(r.headers.get("content-length") or 0)
                total = (have + length if length else None) or expected_bytes
                advance = progress(f"downloading {name}", total) if progress else None
                if advance and have:
                    advance(have)
                with dest.open("ab" if have else "wb") as f:
                    for block in r.iter_raw():
                        f.write(block)
                        h.update(block)
                        got += len(block)
                        if advance:
                            advance(len(block))
                        if expected_bytes is not None and got > expected_bytes:
                            break
    except httpx.TransportError as e:
        if dest.is_file() and dest.stat().st_size == 0:
            dest.unlink()
        reason = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        kept = dest.stat().st_size if dest.is_file() else 0
        resume = f"; {kept} bytes kept, the next attempt resumes" if kept else ""
        raise DownloadError(
            f"cannot reach {host}: this machine looks offline ({reason}){resume}; download {url} elsewhere and "
            f"run `ivr models pull {name} --from FILE.zip`"
        ) from None
    if expected_bytes is not None and got != expected_bytes:  # the server said it was done: a wrong file
        dest.unlink(missing_ok=True)
        raise DownloadError(f"download of {name} has {got} bytes, expected {expected_bytes}: wrong file (removed)")
    digest = h.hexdigest()
    if expected_sha256 and digest != expected_sha256:
        dest.unlink(missing_ok=True)
        raise DownloadError(f"download of {name}: sha256 {digest[:16]}... does not match the expected "
                            f"{expected_sha256[:16]}...: wrong or damaged file (removed)")
    return digest


def registry_url(url: str, settings: Settings) -> str:
    """A registry download address moved to ``settings.model_base_url`` (a mirror or a local server)."""
    base = settings.model_base_url
    if url.startswith(BASE_URL) and base and base != BASE_URL:
        return base.rstrip("/") + "/" + url[len(BASE_URL):]
    return url
