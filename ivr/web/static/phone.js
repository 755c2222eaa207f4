// Softphone: one WebRTC call to the bot. Signalling is a single POST (no trickle ICE); DTMF, hang-up and the
// live transcript travel on the "ivr" data channel (HTTP fallbacks: POST /api/calls/{id}/dtmf, DELETE, both with
// the answer's per-call token in X-Call-Token: the call id alone opens nothing).
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const STATES = {  // words: the page's ui/phone.yaml through L() (/static/ui_text.js, loaded first)
    idle: L("state_idle"), dialing: L("state_dialing"), connected: L("state_connected"),
    bot_speaking: L("state_bot_speaking"), caller_speaking: L("state_caller_speaking"),
    listening: L("state_listening"), interrupted: L("state_interrupted"), ended: L("state_ended"),
  };
  // Exposed for tests and debugging: what the page has seen and heard.
  const phone = (window.ivrPhone = { callId: null, state: "idle", maxLevel: 0, heardMs: 0, lines: [], error: null });
  let pc = null, dc = null, mic = null, meter = null, partialEl = null, callToken = null;

  function setState(s, extra) {
    phone.state = s;
    const name = STATES[s] || s;
    $("state").textContent = extra ? L("state_with_detail", { state: name, detail: extra }) : name;
    const inCall = !["idle", "ended"].includes(s);
    $("call").disabled = inCall;
    $("hangup").disabled = !inCall;
  }

  function addLine(who, text, partial) {
    if (partial) {
      if (!partialEl) { partialEl = document.createElement("li"); $("lines").appendChild(partialEl); }
      partialEl.className = who + " partial"; partialEl.textContent = text;
    } else {
      const li = partialEl && who === "caller" ? partialEl : document.createElement("li");
      if (li === partialEl) partialEl = null;
      li.className = who; li.textContent = text;
      if (!li.parentNode) $("lines").appendChild(li);
      phone.lines.push({ who: who, text: text });
    }
    $("lines").parentNode.scrollTop = 1e9;
  }

  function onEvent(ev) {
    if (ev.type === "transcript") addLine(ev.who, ev.text, !ev.final);
    else if (ev.type === "dtmf") {
      const last = $("lines").lastElementChild;
      if (last && last.dataset.keys !== undefined) {
        last.dataset.keys += ev.digits;
        last.textContent = L("dtmf_keys", { keys: last.dataset.keys });
      } else {
        addLine("caller", L("dtmf_keys", { keys: ev.digits }), false);
        $("lines").lastElementChild.dataset.keys = ev.digits;
      }
    }
    else if (ev.type === "state") {
      if (ev.state === "connected" && ev.asr === false) addLine("info", L("asr_unavailable"), false);
      setState(ev.state === "ended" ? "ended" : ev.state);
      if (ev.state === "ended") teardown();
    }
  }

  function measure(stream) {
    try { meter = window.ivrMeter(stream, phone, $("level")); } catch (e) { console.warn("no level meter", e); }
  }

  const waitIce = window.ivrWaitIce;

  async function call() {
    phone.error = null; phone.maxLevel = 0; phone.heardMs = 0;
    $("lines").innerHTML = ""; phone.lines = []; partialEl = null;
    setState("dialing");
    try {
      mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
    } catch (e) { return fail(L("mic_error", { name: e.name })); }
    pc = new RTCPeerConnection(await window.ivrRtcConfig());
    phone.icePath = () => window.ivrIcePath(pc);  // for tests: which candidates carry the call
    mic.getTracks().forEach((t) => pc.addTrack(t, mic));
    dc = pc.createDataChannel("ivr");
    dc.onmessage = (m) => { try { onEvent(JSON.parse(m.data)); } catch (e) { console.warn(e); } };
    pc.ontrack = (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      $("remote").srcObject = stream;
      $("remote").play().catch(() => {});
      measure(stream);
    };
    pc.onconnectionstatechange = () => {
      if (["failed", "closed"].includes(pc && pc.connectionState)) {
        setState("ended", L("connection_lost"));
        teardown();
      }
    };
    await pc.setLocalDescription(await pc.createOffer());
    await waitIce(pc);
    let res;
    try {
      res = await fetch("/api/calls/webrtc", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type }),
      });
    } catch (e) { return fail(L("network_error")); }
    const body = await res.json().catch(() => ({}));
    if (!res.ok) return fail(res.status === 503 ? L("line_busy") : (body.error || L("call_failed")));
    phone.callId = body.call_id;
    callToken = body.call_token;
    await pc.setRemoteDescription({ sdp: body.sdp, type: body.type });
    setState("connected");
  }

  function fail(msg) {
    phone.error = msg;
    setState("idle", msg);
    teardown();
  }

  function sendKey(key) {
    if (!phone.callId) return;
    if (dc && dc.readyState === "open") dc.send(JSON.stringify({ type: "dtmf", digits: key }));
    else fetch("/api/calls/" + phone.callId + "/dtmf", {
      method: "POST", headers: { "Content-Type": "application/json", "X-Call-Token": callToken },
      body: JSON.stringify({ digits: key }),
    });
  }

  function hangup() {
    if (dc && dc.readyState === "open") dc.send(JSON.stringify({ type: "hangup" }));
    if (phone.callId && callToken) {
      fetch("/api/calls/" + phone.callId, { method: "DELETE", headers: { "X-Call-Token": callToken } }).catch(() => {});
    }
    setState("ended");
    teardown();
  }

  function teardown() {
    if (meter) { meter.stop(); meter = null; }
    if (mic) { mic.getTracks().forEach((t) => t.stop()); mic = null; }
    if (pc) { const p = pc; pc = null; setTimeout(() => p.close(), 300); }
    dc = null;
  }

  $("call").addEventListener("click", call);
  $("hangup").addEventListener("click", hangup);
  document.querySelectorAll(".keypad button").forEach((b) =>
    b.addEventListener("click", () => sendKey(b.dataset.key)));
  phone.press = sendKey;
  setState("idle");
})();
