// Supervisor live wall: /api/wall/events (Server-Sent Events) -> tiles, queue, agents, live calls, alerts.
// Texts are inserted with textContent only (never as HTML).
"use strict";

// Words: the page's ui/wall.yaml through L() (/static/ui_text.js, loaded first).
const PRESENCE = {
  available: L("presence_available"), ringing: L("presence_ringing"), busy: L("presence_busy"),
  wrap_up: L("presence_wrap_up"), away: L("presence_away"), offline: L("presence_offline"),
};
const STATE = { bot: L("state_bot"), queue: L("state_queue"), agent: L("state_agent") };
const MOOD = { angry: L("mood_angry"), frustrated: L("mood_frustrated"), calm: L("mood_calm") };
const CHANNEL = { webrtc: L("channel_webrtc"), sip: L("channel_sip"), chat: L("channel_chat") };
window.ivrWall = { updates: 0, snapshot: null };

function secs(x) {
  if (x == null) return "—";
  const s = Math.round(x);
  return s >= 60 ? L("dur_min_sec", { m: Math.floor(s / 60), s: s % 60 }) : L("dur_sec", { s: s });
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

function text(id, value) { document.getElementById(id).textContent = String(value); }

function rows(selector, items, cols, empty, attrs) {
  const body = document.querySelector(`${selector} tbody`);
  body.replaceChildren();
  if (!items.length) body.append(el("tr", {}, el("td", { colspan: String(cols), class: "empty" }, empty)));
  for (const it of items) body.append(attrs(it));
}

function render(s) {
  text("calls-total", s.calls.total);
  text("calls-bot", s.calls.bot);
  text("calls-queue", s.calls.queue);
  text("calls-agent", s.calls.agent);
  text("queue-length", s.queue.length);
  text("queue-longest", secs(s.queue.longest_wait_s));
  document.getElementById("queue-tile").classList.toggle("warn", s.queue.length >= s.queue.alert_at);
  const sl = s.service_level;
  text("service-level", sl.value == null ? "—" : `${(sl.value * 100).toFixed(0)}%`);
  text("service-level-sub", L("service_level_detail",
    { answered: sl.answered_within, offered: sl.offered, s: sl.threshold_s }));
  const bp = s.agents.by_presence;
  text("agents-available", L("agents_available", { n: bp.available || 0 }));
  text("agents-summary", Object.keys(PRESENCE).filter((p) => p !== "available" && bp[p])
    .map((p) => `${PRESENCE[p]} ${bp[p]}`).join(" · ") || "—");

  const alerts = document.getElementById("alerts");
  alerts.replaceChildren(...s.alerts.map((a) => el("div", { class: `alert ${a.kind}`, role: "alert",
    "data-kind": a.kind }, a.text)));

  rows("#queue", s.queue.waiting, 7, L("queue_empty"), (w) => el("tr", { "data-call": w.call_id },
    el("td", {}, w.position), el("td", {}, w.caller || L("unknown_caller")), el("td", {}, w.skill),
    el("td", {}, w.priority),
    el("td", {}, secs(w.waiting_s)), el("td", { class: `m-${w.mood}` }, MOOD[w.mood] || w.mood),
    el("td", {}, w.summary || "")));
  rows("#agents", s.agents.list, 4, L("agents_empty"), (a) => el("tr", { "data-agent": a.username,
    "data-presence": a.presence }, el("td", {}, a.display_name || a.username),
  el("td", { class: `p-${a.presence}` }, PRESENCE[a.presence] || a.presence),
  el("td", {}, a.skills.join(L("list_sep"))),
  el("td", {}, a.call_id || "")));
  const join = window.ivrSuperviseButtons || (() => null);  // listen/whisper/barge (wall_supervise.js)
  rows("#live", s.live, 7, L("live_empty"), (c) => el("tr", { "data-call": c.call_id, "data-state": c.state },
    el("td", {}, c.caller || L("unknown_caller")), el("td", {}, CHANNEL[c.channel] || c.channel),
    el("td", {}, STATE[c.state]),
    el("td", {}, secs(c.duration_s)), el("td", {}, c.agent || ""),
    el("td", { class: `m-${c.mood}` }, MOOD[c.mood] || c.mood), el("td", { class: "sv" }, join(c))));
}

function connect() {
  const conn = document.getElementById("conn");
  const es = new EventSource("/api/wall/events");
  es.onopen = () => { conn.textContent = L("conn_live"); conn.className = "conn"; };
  es.onerror = () => { conn.textContent = L("conn_lost"); conn.className = "conn down"; };
  es.onmessage = (e) => {
    const s = JSON.parse(e.data);
    if (s.type === "session_ended") {
      es.close();
      window.location.href = "/login?next=/wall";
      return;
    }
    if (s.type !== "wall") return;
    render(s);
    window.ivrWall.snapshot = s;
    window.ivrWall.updates += 1;
  };
}

connect();
