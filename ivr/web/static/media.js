// Media helpers shared by the softphone and the agent desktop.

// Level of the remote audio: updates stats.maxLevel and
// stats.heardMs (time above -40 dBFS) every 50 ms and drives a <meter>. Returns {stop()}.
window.ivrMeter = function (stream, stats, meterEl) {
  "use strict";
  const ctx = new (window.AudioContext || window.webkitAudioContext)();
  const an = ctx.createAnalyser();
  an.fftSize = 2048;
  ctx.createMediaStreamSource(stream).connect(an);
  const buf = new Float32Array(an.fftSize);
  const timer = setInterval(() => {
    an.getFloatTimeDomainData(buf);
    let sum = 0;
    for (let i = 0; i < buf.length; i++) sum += buf[i] * buf[i];
    const rms = Math.sqrt(sum / buf.length);
    stats.maxLevel = Math.max(stats.maxLevel, rms);
    if (rms > 0.01) stats.heardMs += 50;
    if (meterEl) meterEl.value = Math.min(1, rms * 5);
  }, 50);
  return { stop() { clearInterval(timer); ctx.close().catch(() => {}); } };
};

// Resolves once ICE gathering is complete (no trickle ICE: the offer carries every candidate), 3 s at most.
window.ivrWaitIce = function (peer) {
  "use strict";
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, 3000);
    peer.addEventListener("icegatheringstatechange", () => {
      if (peer.iceGatheringState === "complete") { clearTimeout(t); resolve(); }
    });
  });
};

// The RTCConfiguration from the service (STUN/TURN servers, transport policy; GET /api/webrtc/config).
window.ivrRtcConfig = async function () {
  "use strict";
  try {
    const res = await fetch("/api/webrtc/config", { cache: "no-store" });
    if (res.ok) return await res.json();
  } catch (e) { console.warn("no ICE configuration", e); }
  return { iceServers: [] };
};

// The candidate types of the connected pair, e.g. {local: "relay", remote: "host"} (null before connecting).
window.ivrIcePath = async function (peer) {
  "use strict";
  if (!peer) return null;
  const stats = await peer.getStats();
  let pair = null;
  stats.forEach((s) => { if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s; });
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId), remote = stats.get(pair.remoteCandidateId);
  return { local: local && local.candidateType, remote: remote && remote.candidateType,
    localPort: local && local.port, remotePort: remote && remote.port };
};
