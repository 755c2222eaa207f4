// Supervisor live wall: /api/wall/events (Server-Sent Events) -> tiles, queue, agents, live calls, alerts.
// Texts are inserted with textContent only (never as HTML).
"use strict";

const PRESENCE = { available: "空闲", ringing: "振铃中", busy: "通话中", wrap_up: "话后处理", away: "离开", offline: "离线" };
const STATE = { bot: "机器人", queue: "排队", agent: "人工" };
const MOOD = { angry: "激动", frustrated: "不满", calm: "平静" };
const CHANNEL = { webrtc: "网页电话", sip: "电话（SIP）", chat: "在线聊天" };
window.ivrWall = { updates: 0, snapshot: null };

function secs(x) {
  if (x == null) return "—";
  const s = Math.round(x);
  return s >= 60 ? `${Math.floor(s / 60)}分${s % 60}秒` : `${s}秒`;
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
  text("service-level-sub", `今日 ${sl.answered_within}/${sl.offered} 位在 ${sl.threshold_s} 秒内接通`);
  const bp = s.agents.by_presence;
  text("agents-available", `${bp.available || 0} 空闲`);
  text("agents-summary", Object.keys(PRESENCE).filter((p) => p !== "available" && bp[p])
    .map((p) => `${PRESENCE[p]} ${bp[p]}`).join(" · ") || "—");

  const alerts = document.getElementById("alerts");
  alerts.replaceChildren(...s.alerts.map((a) => el("div", { class: `alert ${a.kind}`, role: "alert",
    "data-kind": a.kind }, a.text)));

  rows("#queue", s.queue.waiting, 7, "目前无人排队", (w) => el("tr", { "data-call": w.call_id },
    el("td", {}, w.position), el("td", {}, w.caller || "未知号码"), el("td", {}, w.skill), el("td", {}, w.priority),
    el("td", {}, secs(w.waiting_s)), el("td", { class: `m-${w.mood}` }, MOOD[w.mood] || w.mood),
    el("td", {}, w.summary || "")));
  rows("#agents", s.agents.list, 4, "还没有坐席登录", (a) => el("tr", { "data-agent": a.username,
    "data-presence": a.presence }, el("td", {}, a.display_name || a.username),
  el("td", { class: `p-${a.presence}` }, PRESENCE[a.presence] || a.presence), el("td", {}, a.skills.join("、")),
  el("td", {}, a.call_id || "")));
  const join = window.ivrSuperviseButtons || (() => null);  // listen/whisper/barge (wall_supervise.js)
  rows("#live", s.live, 7, "目前没有通话", (c) => el("tr", { "data-call": c.call_id, "data-state": c.state },
    el("td", {}, c.caller || "未知号码"), el("td", {}, CHANNEL[c.channel] || c.channel), el("td", {}, STATE[c.state]),
    el("td", {}, secs(c.duration_s)), el("td", {}, c.agent || ""),
    el("td", { class: `m-${c.mood}` }, MOOD[c.mood] || c.mood), el("td", { class: "sv" }, join(c))));
}

function connect() {
  const conn = document.getElementById("conn");
  const es = new EventSource("/api/wall/events");
  es.onopen = () => { conn.textContent = "实时"; conn.className = "conn"; };
  es.onerror = () => { conn.textContent = "连接中断，正在重连…"; conn.className = "conn down"; };
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
