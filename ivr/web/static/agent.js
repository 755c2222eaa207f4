// Agent desktop: presence, ringing (tone + desktop notification) with the context card, the agent's WebRTC leg
// (mute, hold, call timer), live transcript, wrap-up; assist suggestions are drawn by agent_assist.js.
// Events come from /api/agent/events (Server-Sent Events); actions are JSON POSTs under /api/agent/.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  // Words: the pack's ui/agent.yaml through L() (/static/ui_text.js).
  const PRESENCE = { offline: L("presence_offline"), available: L("presence_available"),
    ringing: L("presence_ringing"), busy: L("presence_busy"), wrap_up: L("presence_wrap_up"),
    away: L("presence_away") };
  const WHO = { caller: L("who_caller"), bot: L("who_bot"), agent: L("who_agent") };
  const MOOD = { calm: L("mood_calm"), frustrated: L("mood_frustrated"), angry: L("mood_angry") };
  // Exposed for tests and debugging.
  const TERMS = JSON.parse(($("terms") || {}).textContent || "{}");  // language pack words (term.*)
  const T = (word) => (word === undefined || word === null ? word : TERMS[word] || word);
  const desk = (window.ivrDesk = { presence: "offline", offer: null, callId: null, context: null, lines: [],
    maxLevel: 0, heardMs: 0, error: null, events: 0, legClosed: null, ringing: false, ringBursts: 0,
    ringPeak: 0, notified: 0, muted: false, held: false, talkSeconds: 0 });
  let pc = null, mic = null, meter = null, ringTimer = null, talkTimer = null;
  const ringer = window.ivrRinger(desk);

  async function post(path, body) {
    const res = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}) });
    if (res.status === 401) { location.href = "/login?next=/agent"; throw new Error("login"); }
    return res;
  }

  function setPresence(p) {
    desk.presence = p;
    const el = $("presence");
    el.textContent = PRESENCE[p] || p; el.className = "presence " + p;
    $("idle").hidden = !["available", "away", "offline"].includes(p);
    $("ringing").hidden = p !== "ringing";
    $("oncall").hidden = p !== "busy";
    $("wrapup").hidden = p !== "wrap_up";
  }

  function addLine(who, text) {
    const li = document.createElement("li");
    li.className = who;
    const w = document.createElement("span"); w.className = "who"; w.textContent = WHO[who] || who;
    li.appendChild(w); li.appendChild(document.createTextNode(text));
    $("lines").appendChild(li);
    desk.lines.push({ who: who, text: text });
    $("lines").scrollTop = 1e9;
  }

  function fact(dl, k, v) {
    if (v === undefined || v === null || v === "") return;
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    dl.appendChild(dt); dl.appendChild(dd);
  }

  function showCard(ctx) {
    desk.context = ctx;
    $("card").hidden = !ctx;
    if (!ctx) return;
    $("summary").textContent = ctx.summary || "";
    const dl = $("facts"); dl.innerHTML = "";
    const v = ctx.verification || {};
    fact(dl, L("fact_caller"), ctx.caller || L("caller_hidden"));
    fact(dl, L("fact_verification"), v.verified ? L("verified")
      : L("unverified") + (v.failed_attempts ? L("verify_failures", { n: v.failed_attempts }) : ""));
    const labels = ctx.labels || {};
    fact(dl, L("fact_intents"), (labels.intents || ctx.intents || []).join(L("list_sep")));
    const s = ctx.sentiment || {};
    fact(dl, L("fact_mood"), (labels.mood || MOOD[s.level] || s.level || "")
      + (s.score !== undefined ? L("mood_score", { score: s.score }) : ""));
    const slots = ctx.slots || {};
    Object.keys(slots).forEach((k) => fact(dl, T(k), T(String(slots[k]))));
    fact(dl, L("fact_reason"), labels.reason || ctx.reason);
    if (s.level) dl.lastChild && (dl.className = "mood-" + s.level);
    const o = ctx.order, od = $("order"); od.innerHTML = "";
    if (o) {
      const h = document.createElement("h3"); h.textContent = L("order_no", { id: o.order_id }); od.appendChild(h);
      const odl = document.createElement("dl"); od.appendChild(odl);
      fact(odl, L("fact_status"), T(o.status));
      fact(odl, L("fact_items"), (o.items || []).map((i) => L("order_item", { name: i.name, qty: i.quantity }))
        .join(L("items_sep")));
      if (o.total_cents !== undefined) fact(odl, L("fact_total"), L("amount_yuan", { amount: (o.total_cents / 100).toFixed(2) }));
      fact(odl, L("fact_customer"), o.customer); fact(odl, L("fact_phone"), o.phone); fact(odl, L("fact_address"), o.address);
      fact(odl, L("fact_shipping"), [o.carrier, o.tracking_no, o.latest_event].filter(Boolean).join(" "));
      fact(odl, L("fact_promised"), o.promised_date);
      if (o.vip) fact(odl, L("fact_member"), L("vip"));
      (o.returns || []).forEach((r) => fact(odl, L("fact_return"), r.rma_id + " " + T(r.kind) + " " + T(r.status)));
      (o.refunds || []).forEach((r) => fact(odl, L("fact_refund"), r.refund_id + " " + T(r.status)));
    }
    $("lines").innerHTML = ""; desk.lines = [];
    (ctx.transcript || []).forEach((t) => addLine(t.who, t.text));
  }

  function showQueue(waiting) {
    $("waiting").textContent = waiting.length;
    const q = $("queue"); q.innerHTML = "";
    waiting.forEach((w) => {
      const li = document.createElement("li");
      li.textContent = L("queue_entry", { caller: w.caller || L("caller_unknown"), s: Math.round(w.waiting_s) })
        + (w.priority > 0 ? L("queue_priority") : "");
      q.appendChild(li);
    });
  }

  function onEvent(ev) {
    desk.events += 1;
    if (ev.type === "presence") {
      setPresence(ev.presence);
      if (ev.presence === "available") { showCard(null); assist("clear"); }
    }
    else if (ev.type === "queue") showQueue(ev.waiting || []);
    else if (ev.type === "offer") {
      desk.offer = ev; desk.callId = ev.call_id; showCard(ev.context); setPresence("ringing");
      ringer.start(L("ringing_call"), (ev.context && ev.context.summary) || L("ring_body"));
      let left = Math.round(ev.ring_timeout_s || 20);
      clearInterval(ringTimer);
      $("countdown").textContent = L("seconds", { s: left });
      ringTimer = setInterval(() => { left -= 1; $("countdown").textContent = L("seconds", { s: Math.max(0, left) }); }, 1000);
    } else if (ev.type === "offer_cancelled") { desk.offer = null; clearInterval(ringTimer); ringer.stop(); showCard(null); }
    else if (ev.type === "connected") { $("callstate").textContent = L("callstate_connected"); startTimer(); assist("load", ev.call_id); }
    else if (ev.type === "hold") showHold(ev.held);
    else if (ev.type === "transcript") addLine(ev.who, ev.text);
    else if (ev.type === "assist") assist("show", ev);
    else if (ev.type === "supervision") supervised(ev);
    else if (ev.type === "caller_hangup") { addLine("bot", L("caller_hung_up")); teardown(); }
    else if (ev.type === "call_ended") teardown();
    else if (ev.type === "session_ended") {  // logged out, password changed or account deactivated
      if (desk.eventSource) desk.eventSource.close();
      teardown(); location.href = "/login?next=/agent";
    }
  }

  function supervised(ev) {  // a supervisor's whisper or barge is announced; silent listening is not
    const speaking = ev.event !== "leave" && (ev.mode === "whisper" || ev.mode === "barge");
    if (speaking && desk.supervision !== ev.mode) {
      addLine("bot", ev.mode === "whisper" ? L("sup_whisper", { name: ev.supervisor }) : L("sup_barge", { name: ev.supervisor }));
    } else if (!speaking && desk.supervision) addLine("bot", L("sup_stopped"));
    desk.supervision = speaking ? ev.mode : null;
  }

  function assist(what, arg) {  // the suggestions panel (agent_assist.js)
    if (window.ivrAssist) window.ivrAssist[what](arg);
  }

  function measure(stream) {
    try { meter = window.ivrMeter(stream, desk, $("level")); } catch (e) { console.warn("no level meter", e); }
  }

  const waitIce = window.ivrWaitIce;

  function startTimer() {
    clearInterval(talkTimer);
    const t0 = Date.now();
    const show = () => {
      desk.talkSeconds = Math.floor((Date.now() - t0) / 1000);
      const m = Math.floor(desk.talkSeconds / 60), s = desk.talkSeconds % 60;
      $("timer").textContent = String(m).padStart(2, "0") + ":" + String(s).padStart(2, "0");
    };
    show(); talkTimer = setInterval(show, 1000);
  }

  function stopTimer() { clearInterval(talkTimer); talkTimer = null; }

  function setMuted(muted) {  // the caller stops hearing the agent's microphone (nothing leaves the browser)
    desk.muted = muted;
    if (mic) mic.getAudioTracks().forEach((t) => { t.enabled = !muted; });
    if (pc) {  // and stop sending at all: a disabled track alone may still carry audio on some devices
      const track = mic && mic.getAudioTracks()[0];
      pc.getSenders().forEach((s) => { if (!s.track || s.track.kind === "audio") s.replaceTrack(muted ? null : track).catch(() => {}); });
    }
    $("mute").textContent = muted ? L("unmute") : L("mute");
    $("mute").setAttribute("aria-pressed", String(muted));
  }

  function showHold(held) {
    desk.held = held;
    $("hold").textContent = held ? L("resume") : L("hold");
    $("hold").setAttribute("aria-pressed", String(held));
    $("callstate").textContent = held ? L("callstate_held") : L("callstate_talking");
  }

  async function toggleHold() {
    if (!desk.callId) return;
    const res = await post("/api/agent/calls/" + desk.callId + "/hold", { hold: !desk.held });
    const body = await res.json().catch(() => ({}));
    if (res.ok) showHold(body.held);
    else addLine("bot", L("hold_failed", { error: body.error || res.status }));
  }

  async function accept() {
    const offer = desk.offer; if (!offer) return;
    clearInterval(ringTimer); ringer.stop();
    desk.maxLevel = 0; desk.heardMs = 0; desk.error = null; desk.legClosed = false;
    try {
      mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
    } catch (e) { desk.error = "mic"; alert(L("mic_failed", { error: e.name })); return; }
    pc = new RTCPeerConnection(await window.ivrRtcConfig());
    mic.getTracks().forEach((t) => pc.addTrack(t, mic));
    pc.ontrack = (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      $("remote").srcObject = stream; $("remote").play().catch(() => {});
      measure(stream);
    };
    await pc.setLocalDescription(await pc.createOffer());
    await waitIce(pc);
    const res = await post("/api/agent/offers/" + offer.offer_id + "/accept",
      { sdp: pc.localDescription.sdp, type: pc.localDescription.type });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) { desk.error = body.error || "accept failed"; addLine("bot", L("accept_failed", { error: desk.error })); teardown(); return; }
    desk.offer = null; desk.callId = body.call_id;
    await pc.setRemoteDescription({ sdp: body.sdp, type: body.type });
  }

  async function acceptOnPhone() {
    const offer = desk.offer; if (!offer) return;
    clearInterval(ringTimer); ringer.stop();
    addLine("bot", L("calling_phone"));
    const res = await post("/api/agent/offers/" + offer.offer_id + "/accept", { via: "sip" });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) { desk.error = body.error || "accept failed"; addLine("bot", L("phone_accept_failed", { error: desk.error })); return; }
    desk.offer = null; desk.callId = body.call_id;
  }

  async function decline() {
    const offer = desk.offer; if (!offer) return;
    clearInterval(ringTimer); ringer.stop(); desk.offer = null;
    await post("/api/agent/offers/" + offer.offer_id + "/decline");
  }

  async function hangup() {
    if (desk.callId) await post("/api/agent/calls/" + desk.callId + "/hangup").catch(() => {});
    teardown();
  }

  function teardown() {
    stopTimer(); ringer.stop(); setMuted(false); showHold(false);
    if (meter) { meter.stop(); meter = null; }
    if (mic) { mic.getTracks().forEach((t) => t.stop()); mic = null; }
    if (pc) { const p = pc; pc = null; setTimeout(() => { p.close(); desk.legClosed = true; }, 300); }
  }

  async function wrapup(e) {
    e.preventDefault();
    const res = await post("/api/agent/calls/" + desk.callId + "/wrapup",
      { disposition: $("disposition").value, note: $("note").value });
    if (res.ok) { $("note").value = ""; desk.callId = null; showCard(null); }
    else addLine("bot", L("wrapup_failed", { error: (await res.json().catch(() => ({}))).error || res.status }));
  }

  async function start() {
    const res = await fetch("/api/agent/state");
    if (res.status === 401) { location.href = "/login?next=/agent"; return; }
    const st = await res.json();
    setPresence(st.agent.presence); showQueue(st.queue || []);
    $("accept-phone").hidden = !st.agent.desk_phone;
    if (st.offer) onEvent({ type: "offer", ...st.offer });
    if (st.call) { desk.callId = st.call.call_id; showCard(st.call.context); (st.call.transcript || []).forEach((t) => addLine(t.who, t.text)); }
    if (st.call && st.call.live) { startTimer(); assist("load", st.call.call_id); }
    const es = new EventSource("/api/agent/events");
    es.onmessage = (m) => { try { onEvent(JSON.parse(m.data)); } catch (err) { console.warn(err); } };
    desk.eventSource = es;
  }

  $("available").addEventListener("click", () => { ringer.unlock(); post("/api/agent/presence", { state: "available" }); });
  $("away").addEventListener("click", () => post("/api/agent/presence", { state: "away" }));
  $("accept").addEventListener("click", accept);
  $("decline").addEventListener("click", decline);
  $("accept-phone").addEventListener("click", acceptOnPhone);
  $("hangup").addEventListener("click", hangup);
  $("mute").addEventListener("click", () => setMuted(!desk.muted));
  $("hold").addEventListener("click", toggleHold);
  $("wrapup").addEventListener("submit", wrapup);
  setPresence("offline");
  start();
})();
