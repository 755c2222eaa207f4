"""Real SIP peers for the gateway tests: sipp scenarios, baresip, and a tshark RTP capture on loopback.

Every process gets a hard timeout and is ended by its own pid, so a broken gateway fails a test instead of
hanging it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ivr.audio import g711
from ivr.audio.frames import AudioFrame
from ivr.bench.ports import reserve_port, reserve_ports

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP_PCAPS = Path("/usr/share/sip-tester")


def free_port(kind: int = socket.SOCK_DGRAM, even: bool = False) -> int:
    """A loopback port held for this test process (``ivr.bench.ports``: no race with parallel workers); an RTP
    peer (``even``) gets the first of four (RTP, RTCP, and sipp's video pair). ``kind``: any, free for both."""
    del kind
    return reserve_ports(4, align=4) if even else reserve_port()


@dataclass
class SippResult:
    rc: int
    stdout: str
    errors: str
    successful: int
    failed: int

    def __str__(self) -> str:
        return f"sipp rc={self.rc} ok={self.successful} failed={self.failed}\n{self.errors[-3000:]}\n{self.stdout[-1500:]}"


def prepare_workdir(workdir: Path) -> Path:
    """sipp's built-in scenarios look for pcap/*.pcap relative to the working directory."""
    (workdir / "pcap").mkdir(parents=True, exist_ok=True)
    for p in SIPP_PCAPS.glob("*.pcap"):
        target = workdir / "pcap" / p.name
        if not target.exists():
            shutil.copy(p, target)
    return workdir


async def run_sipp(target: str, *, scenario: str, workdir: Path, calls: int = 1, rate: float | None = None,
                   timeout: float = 40, media_port: int | None = None, extra: list[str] | None = None,
                   local_ip: str = "127.0.0.1") -> SippResult:
    """Run sipp (``scenario`` = built-in name like 'uac' or an XML file under tests/sip/scenarios); ``local_ip``:
    sipp's SIP and media address (another loopback address, e.g. 127.0.0.2, plays a different host)."""
    prepare_workdir(workdir)
    err = workdir / f"sipp-{os.getpid()}-{id(workdir)}-{scenario.replace('/', '_')}.err"
    xml = SCENARIOS / scenario
    args = ["sipp", target, "-m", str(calls), "-timeout", f"{int(timeout)}s", "-timeout_error", "-trace_err",
            "-error_file", str(err), "-nostdin", "-p", str(free_port()), "-i", local_ip]
    args += ["-sf", str(xml)] if xml.suffix == ".xml" else ["-sn", scenario]
    if rate is not None:
        args += ["-r", str(rate)]
    args += ["-mp", str(media_port or free_port(even=True))]
    args += extra or []
    proc = await asyncio.create_subprocess_exec(*args, cwd=workdir, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout + 15)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
    text = out.decode("utf-8", "replace")
    return SippResult(proc.returncode if proc.returncode is not None else -1, text,
                      err.read_text("utf-8", "replace") if err.exists() else "",
                      _last_count(text, "Successful call"), _last_count(text, "Failed call"))


def _last_count(screen: str, label: str) -> int:
    """sipp's final screen: '  Successful call |  <periodic>  |  <cumulative>'."""
    rows = [line for line in screen.splitlines() if line.strip().startswith(label)]
    if not rows:
        return -1
    nums = re.findall(r"\d+", rows[-1])
    return int(nums[-1]) if nums else -1


@dataclass
class RtcpDatagram:
    """One RTCP compound packet: its packet types (200 SR, 201 RR, 202 SDES, 203 BYE), the first sender SSRC,
    and the SR's sender packet count (0 without an SR)."""

    types: list[int]
    ssrc: int
    packet_count: int


class RtpCapture:
    """tshark on the loopback interface, recording UDP sent to one port; decodes G.711 payloads afterwards."""

    def __init__(self, port: int, path: Path) -> None:
        self.port, self.path = port, path
        self.proc: subprocess.Popen | None = None

    async def __aenter__(self) -> RtpCapture:
        self.proc = subprocess.Popen(
            ["tshark", "-q", "-i", "lo", "-f", f"udp dst port {self.port}", "-w", str(self.path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # wait until tshark says it is capturing (stderr line "Capturing on 'Loopback: lo'")
        loop = asyncio.get_running_loop()
        seen = b""
        while b"Capturing" not in seen:
            line = await asyncio.wait_for(loop.run_in_executor(None, self.proc.stderr.readline), 20)
            assert line, f"tshark did not start: {seen!r}"
            seen += line
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.sleep(0.3)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.proc.wait, 10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def packets(self) -> list[tuple[int, bytes]]:
        """(payload type, payload) of every RTP packet captured."""
        out = subprocess.run(
            ["tshark", "-r", str(self.path), "-d", f"udp.port=={self.port},rtp", "-T", "fields",
             "-e", "rtp.p_type", "-e", "rtp.payload"], capture_output=True, text=True, timeout=60).stdout
        pkts = []
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) == 2 and parts[0].strip().isdigit():
                pkts.append((int(parts[0]), bytes.fromhex(parts[1].replace(":", ""))))
        return pkts

    def timed_packets(self) -> list[tuple[float, int, bytes]]:
        """(capture time, epoch seconds; payload type; payload) of every RTP packet captured."""
        out = subprocess.run(
            ["tshark", "-r", str(self.path), "-d", f"udp.port=={self.port},rtp", "-T", "fields",
             "-e", "frame.time_epoch", "-e", "rtp.p_type", "-e", "rtp.payload"], capture_output=True, text=True,
            timeout=60).stdout
        pkts = []
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[1].strip().isdigit():
                pkts.append((float(parts[0]), int(parts[1]), bytes.fromhex(parts[2].replace(":", ""))))
        return pkts

    def ssrcs(self) -> set[int]:
        """The RTP SSRCs seen (one per RTP stream the bot opened towards this port)."""
        out = subprocess.run(
            ["tshark", "-r", str(self.path), "-d", f"udp.port=={self.port},rtp", "-T", "fields", "-e", "rtp.ssrc"],
            capture_output=True, text=True, timeout=60).stdout
        return {int(v, 0) for v in out.split() if v.strip()}

    def rtcp_packets(self) -> list[RtcpDatagram]:
        """Every captured datagram decoded as RTCP (capture on the RTP port + 1)."""
        out = subprocess.run(
            ["tshark", "-r", str(self.path), "-d", f"udp.port=={self.port},rtcp", "-T", "fields", "-E", "separator=\t",
             "-E", "occurrence=a", "-E", "aggregator=,", "-e", "rtcp.pt", "-e", "rtcp.senderssrc",
             "-e", "rtcp.sender.packetcount"], capture_output=True, text=True, timeout=60).stdout
        pkts = []
        for line in out.splitlines():
            cols = (line.split("\t") + ["", "", ""])[:3]
            types = [int(v) for v in cols[0].split(",") if v.strip().isdigit()]
            if not types:
                continue
            ssrc = next((int(v, 0) for v in cols[1].split(",") if v.strip()), 0)
            count = next((int(v) for v in cols[2].split(",") if v.strip().isdigit()), 0)
            pkts.append(RtcpDatagram(types, ssrc, count))
        return pkts

    def audio(self) -> AudioFrame:
        """The captured G.711 audio (PCMU/PCMA packets only) decoded to 8 kHz PCM."""
        pcm = b"".join(g711.decode("PCMU" if pt == 0 else "PCMA", p).pcm for pt, p in self.packets() if pt in (0, 8))
        return AudioFrame(pcm, 8000)


def baresip_config(confdir: Path, *, wav_in: Path, sip_port: int, rec_dir: Path) -> Path:
    """A headless baresip: reads its 'microphone' from an 8 kHz mono WAV, records both directions with sndfile."""
    confdir.mkdir(parents=True, exist_ok=True)
    rec_dir.mkdir(parents=True, exist_ok=True)
    (confdir / "config").write_text(
        f"""poll_method epoll
sip_listen 127.0.0.1:{sip_port}
audio_player aubridge,nil
audio_source aufile,{wav_in}
audio_alert aubridge,nil
module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module aubridge.so
module sndfile.so
module_app account.so
module_app menu.so
snd_path {rec_dir}
rtp_ports 20000-29999
""")
    (confdir / "accounts").write_text(f"<sip:caller@127.0.0.1:{sip_port}>;regint=0;audio_codecs=PCMU,PCMA\n")
    (confdir / "contacts").write_text("")
    return confdir


async def run_baresip(confdir: Path, dial: str, seconds: int) -> tuple[int, str]:
    """Start baresip, dial ``dial``, quit after ``seconds``; returns (rc, log)."""
    proc = await asyncio.create_subprocess_exec(
        "baresip", "-f", str(confdir), "-n", "127.0.0.1", "-e", f"/dial {dial}", "-t", str(seconds),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), seconds + 15)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        out, _ = await proc.communicate()
    return proc.returncode if proc.returncode is not None else -1, out.decode("utf-8", "replace")
