// Listen / whisper / barge from the wall (supervisors only): the browser joins a live agent call with its own
// WebRTC leg (POST /api/wall/calls/{id}/supervise); the server mixes (listen: hear both sides; whisper: the agent
// also hears you; barge: both hear you). Exposed for tests as window.ivrSupervise.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const MODES = { listen: L("sv_mode_listen"), whisper: L("sv_mode_whisper"), barge: L("sv_mode_barge") };
  const panel = $("supervise");
  const allowed = panel.dataset.role === "supervisor";
  const sv = (window.ivrSupervise = { callId: null, mode: null, maxLevel: 0, heardMs: 0, error: null, closed: null });
  let pc = null, mic = null, meter = null;

  async function post(path, body) {
    const res = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}) });
    if (res.status === 401) { location.href = "/login?next=/wall"; throw new Error("login"); }
    return res;
  }

  function fail(text) { sv.error = text; $("sv-error").textContent = text; $("sv-error").hidden = false; }

  function show() {
    panel.hidden = !sv.callId;
    $("sv-call").textContent = sv.callId || "";
    $("sv-mode").textContent = MODES[sv.mode] || "";
    panel.querySelectorAll("button[data-mode]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.mode === sv.mode)));
  }

  function close() {
    if (meter) { meter.stop(); meter = null; }
    if (mic) { mic.getTracks().forEach((t) => t.stop()); mic = null; }
    if (pc) { const p = pc; pc = null; setTimeout(() => { p.close(); sv.closed = true; }, 200); }
    sv.callId = null; sv.mode = null; show();
  }

  async function join(callId, mode) {
    if (sv.callId) await leave();
    sv.error = null; sv.closed = false; sv.maxLevel = 0; sv.heardMs = 0; $("sv-error").hidden = true;
    try {
      mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: false } });
    } catch (e) { fail(L("mic_error", { name: e.name })); return; }
    pc = new RTCPeerConnection(await window.ivrRtcConfig());
    mic.getTracks().forEach((t) => pc.addTrack(t, mic));
    pc.ontrack = (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      $("sv-audio").srcObject = stream; $("sv-audio").play().catch(() => {});
      try { meter = window.ivrMeter(stream, sv, $("sv-level")); } catch (err) { console.warn("no level meter", err); }
    };
    await pc.setLocalDescription(await pc.createOffer());
    await window.ivrWaitIce(pc);
    const res = await post("/api/wall/calls/" + encodeURIComponent(callId) + "/supervise",
      { sdp: pc.localDescription.sdp, type: pc.localDescription.type, mode: mode });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) { close(); fail(L("sv_join_failed", { error: body.error || res.status })); return; }
    await pc.setRemoteDescription({ sdp: body.sdp, type: body.type });
    sv.callId = callId; sv.mode = body.mode; show();
  }

  async function setMode(mode) {
    if (!sv.callId) return;
    const res = await post("/api/wall/calls/" + encodeURIComponent(sv.callId) + "/supervise/mode", { mode: mode });
    const body = await res.json().catch(() => ({}));
    if (res.ok) { sv.mode = body.mode; show(); } else fail(L("sv_mode_failed", { error: body.error || res.status }));
  }

  async function leave() {
    if (sv.callId) await post("/api/wall/calls/" + encodeURIComponent(sv.callId) + "/supervise/end").catch(() => {});
    close();
  }

  // buttons for one row of the live-calls table (wall.js calls this while it draws the table)
  window.ivrSuperviseButtons = function (c) {
    if (!allowed || c.state !== "agent") return null;
    const box = document.createElement("span");
    const labels = [["listen", L("sv_join_listen")], ["whisper", L("sv_join_whisper")], ["barge", L("sv_join_barge")]];
    labels.forEach(([mode, label]) => {
      const b = document.createElement("button");
      b.type = "button"; b.className = "sv-join"; b.dataset.mode = mode; b.dataset.call = c.call_id;
      b.textContent = label;
      box.appendChild(b);
    });
    return box;
  };

  document.getElementById("live").addEventListener("click", (e) => {
    const b = e.target.closest("button.sv-join");
    if (!b) return;
    if (sv.callId === b.dataset.call) setMode(b.dataset.mode); else join(b.dataset.call, b.dataset.mode);
  });
  panel.querySelectorAll("button[data-mode]").forEach((b) => b.addEventListener("click", () => setMode(b.dataset.mode)));
  $("sv-end").addEventListener("click", leave);
  // the call ended under us: the wall no longer lists it as an agent call
  setInterval(() => {
    const snap = window.ivrWall && window.ivrWall.snapshot;
    if (sv.callId && snap && !snap.live.some((c) => c.call_id === sv.callId && c.state === "agent")) close();
  }, 1000);
  window.ivrSupervise.join = join; window.ivrSupervise.setMode = setMode; window.ivrSupervise.leave = leave;
})();
