// Service-health dashboard: /api/stats -> KPI tiles + Chart.js charts; drill-down KPI -> calls -> transcript.
// Texts from records are inserted with textContent only (never as HTML).
"use strict";

const OUTCOME = { self_served: L("outcome_self_served"), transferred: L("outcome_transferred"),
  callback: L("outcome_callback"), abandoned: L("outcome_abandoned"), failed: L("outcome_failed"),
  in_progress: L("outcome_in_progress") };
const OUTCOME_COLOR = { self_served: "#2e9d5b", transferred: "#2f6fd6", callback: "#8e5bd6", abandoned: "#e08a1e",
  failed: "#c0392b" };
const KPIS = [
  { key: "calls", label: L("kpi_calls"), fmt: (k) => k.calls, sub: (k) => L("kpi_calls_sub", { n: k.in_progress }) },
  { key: "containment", label: L("kpi_containment"), fmt: (k) => pct(k.containment),
    sub: (k) => L("kpi_n_calls", { n: k.self_served }) },
  { key: "transfer_rate", label: L("kpi_transfer_rate"), fmt: (k) => pct(k.transfer_rate),
    sub: (k) => L("kpi_n_calls", { n: k.transferred }) },
  { key: "abandonment", label: L("kpi_abandonment"), fmt: (k) => pct(k.abandonment),
    sub: (k) => L("kpi_n_calls", { n: k.abandoned }) },
  { key: "callback_rate", label: L("kpi_callback_rate"), fmt: (k) => pct(k.callback_rate),
    sub: (k) => L("kpi_n_calls", { n: k.callback }) },
  { key: "calls", id: "aht", label: L("kpi_aht"), fmt: (k) => secs(k.aht_s), sub: () => L("kpi_aht_sub") },
  { key: "fcr", label: L("kpi_fcr"), fmt: (k) => pct(k.fcr),
    sub: (k) => L("kpi_fcr_sub", { resolved: k.fcr_resolved, eligible: k.fcr_eligible }) },
  { key: "csat", label: L("kpi_csat"), fmt: (k) => num(k.csat_avg, 2), sub: (k) => L("kpi_csat_sub", { n: k.csat_count }) },
  { key: "latency", label: L("kpi_latency"), fmt: (k) => `${num(k.latency_p50_ms, 0)} / ${num(k.latency_p95_ms, 0)}`,
    sub: (k) => L("kpi_latency_sub", { n: k.latency_turns }) },
  { key: "calls", id: "asr", label: L("kpi_asr"), fmt: (k) => num(k.asr_confidence_avg, 2),
    sub: (k) => L("kpi_asr_sub", { n: k.asr_turns }) },
  { key: "offers", label: L("kpi_offers"), fmt: (k) => pct(k.offer_acceptance_rate),
    sub: (k) => L("kpi_offers_sub", { offered: k.offers_offered, accepted: k.offers_accepted }) },
];
const KPI_TITLE = { calls: L("drill_calls"), containment: L("drill_containment"), transfer_rate: L("drill_transfer_rate"),
  abandonment: L("drill_abandonment"), callback_rate: L("drill_callback_rate"), fcr: L("drill_fcr"), csat: L("drill_csat"),
  latency: L("drill_latency"), offers: L("drill_offers"), offers_accepted: L("drill_offers_accepted") };
const OFFER_KIND = { accessory: L("offer_accessory"), coupon: L("offer_coupon"), restock: L("offer_restock") };
let channelNames = {};  // channel or channel group -> its label (from /api/stats channel_groups)

const charts = {};
window.ivrCharts = charts;
let current = null;
let shopTz = "Asia/Shanghai";  // the period's timezone (from /api/stats): buckets and times are shop time

const LOCALE = document.documentElement.lang || "zh-CN";  // the language pack's tag (dates and times)
function when(iso) { return new Date(iso).toLocaleString(LOCALE, { hour12: false, timeZone: shopTz }); }

function pct(x) { return x == null ? "—" : `${(x * 100).toFixed(1)}%`; }
function num(x, d) { return x == null ? "—" : Number(x).toFixed(d); }
function secs(x) {
  if (x == null) return "—";
  return x >= 60 ? L("duration_min_sec", { m: Math.floor(x / 60), s: Math.round(x % 60) }) : L("duration_sec", { s: x.toFixed(1) });
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

function query() {
  const p = new URLSearchParams();
  const period = document.getElementById("period").value;
  if (period === "custom") {
    const f = document.getElementById("from").value, t = document.getElementById("to").value;
    if (f) p.set("from", f);
    if (t) p.set("to", t);
  } else {
    p.set("period", period);
  }
  const ch = document.getElementById("channel").value;
  if (ch) p.set("channel", ch);
  return p;
}

async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin" });
  if (r.status === 401) { location.href = "/login?next=/dashboard"; throw new Error("login required"); }
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function label(t, bucket) {
  const d = t.slice(5, 10);
  return bucket === "hour" ? `${d} ${t.slice(11, 16)}` : d;
}

function chart(id, config) {
  if (charts[id]) charts[id].destroy();
  config.options = Object.assign({ animation: false, responsive: true, maintainAspectRatio: false }, config.options);
  charts[id] = new Chart(document.getElementById(id), config);
  return charts[id];
}

function renderKpis(k) {
  const box = document.getElementById("kpis");
  box.replaceChildren();
  for (const d of KPIS) {
    const tile = el("button", { class: "kpi", type: "button", "data-kpi": d.id || d.key,
      onclick: () => drill({ kpi: d.key }, KPI_TITLE[d.key] || d.label) },
    el("div", { class: "label" }, d.label), el("div", { class: "value" }, d.fmt(k)), el("div", { class: "sub" }, d.sub(k)));
    box.append(tile);
  }
}

function renderCharts(s) {
  const b = s.period.bucket;
  const labels = s.series.map((p) => label(p.t, b));
  const other = (p) => p.calls - p.self_served - p.transferred - p.abandoned;
  chart("chart-calls", { type: "bar", data: { labels, datasets: [
    { label: OUTCOME.self_served, data: s.series.map((p) => p.self_served), backgroundColor: OUTCOME_COLOR.self_served },
    { label: OUTCOME.transferred, data: s.series.map((p) => p.transferred), backgroundColor: OUTCOME_COLOR.transferred },
    { label: OUTCOME.abandoned, data: s.series.map((p) => p.abandoned), backgroundColor: OUTCOME_COLOR.abandoned },
    { label: L("series_other"), data: s.series.map(other), backgroundColor: "#9aa7b5" },
  ] }, options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } } });
  chart("chart-containment", { type: "line", data: { labels, datasets: [{ label: L("series_containment"), spanGaps: true,
    data: s.series.map((p) => (p.containment == null ? null : p.containment * 100)), borderColor: "#2e9d5b",
    backgroundColor: "#2e9d5b33", fill: true }] }, options: { scales: { y: { min: 0, max: 100 } } } });
  chart("chart-csat", { type: "line", data: { labels, datasets: [{ label: L("series_csat_avg"), spanGaps: true,
    data: s.series.map((p) => p.csat_avg), borderColor: "#d69a2f", backgroundColor: "#d69a2f" }] },
  options: { scales: { y: { min: 1, max: 5 } } } });
  const dist = s.kpis.csat_distribution;
  chart("chart-csat-dist", { type: "bar", data: { labels: [1, 2, 3, 4, 5].map((n) => L("csat_score", { n })),
    datasets: [{ label: L("series_csat_count"),
    data: ["1", "2", "3", "4", "5"].map((k) => dist[k]),
    backgroundColor: ["#c0392b", "#e67e22", "#f1c40f", "#7dbb4a", "#2e9d5b"] }] },
  options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
    onClick: (_e, els) => { if (els.length) drill({ csat: els[0].index + 1 }, L("drill_csat_score", { n: els[0].index + 1 })); } } });
  chart("chart-latency", { type: "line", data: { labels, datasets: [
    { label: "p50", data: s.series.map((p) => p.latency_p50_ms), borderColor: "#2f6fd6", backgroundColor: "#2f6fd6", spanGaps: true },
    { label: "p95", data: s.series.map((p) => p.latency_p95_ms), borderColor: "#c0392b", backgroundColor: "#c0392b", spanGaps: true },
  ] }, options: { scales: { y: { beginAtZero: true } } } });
  chart("chart-sentiment", { type: "line", data: { labels, datasets: [
    { label: L("series_sentiment"), data: s.sentiment.series.map((p) => p.avg), borderColor: "#8e5bd6",
      backgroundColor: "#8e5bd6", spanGaps: true, yAxisID: "y" },
    { label: L("series_negative"), data: s.sentiment.series.map((p) => (p.negative_share == null ? null : p.negative_share * 100)),
      borderColor: "#c0392b", backgroundColor: "#c0392b", borderDash: [4, 3], spanGaps: true, yAxisID: "y1" },
  ] }, options: { scales: { y: { min: -1, max: 1 }, y1: { position: "right", min: 0, max: 100, grid: { drawOnChartArea: false } } } } });
  const intents = s.intents.slice(0, 20);
  const names = s.intent_labels || {};
  chart("chart-intents", { type: "bar", data: { labels: intents.map((i) => names[i.intent] || i.intent), datasets: [{ label: L("series_count"),
    data: intents.map((i) => i.count), backgroundColor: "#2f6fd6" }] },
  options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
    onClick: (_e, els) => { if (els.length) { const i = intents[els[0].index].intent; drill({ intent: i }, L("drill_intent", { intent: i })); } } } });
}

// Per-channel KPIs (voice-sip, voice-webrtc, chat, webhook): a row filters the whole page to its channel.
function renderChannels(s) {
  const body = document.querySelector("#channel-kpis tbody");
  body.replaceChildren();
  for (const c of s.by_channel || []) {
    const offers = c.offers_made
      ? L("channel_offers", { accepted: c.offers_accepted, made: c.offers_made, rate: pct(c.offer_acceptance_rate) }) : "—";
    body.append(el("tr", { class: "clickable", "data-channel": c.channel, onclick: () => pickChannel(c.channel) },
      el("td", {}, c.label), el("td", {}, c.calls), el("td", {}, pct(c.containment)), el("td", {}, pct(c.transfer_rate)),
      el("td", {}, c.csat_count ? L("channel_csat", { avg: num(c.csat_avg, 2), n: c.csat_count }) : "—"), el("td", {}, secs(c.aht_s)),
      el("td", {}, offers)));
  }
  const o = s.offers || { by_kind: {} };
  const kinds = document.getElementById("offer-kinds");
  kinds.replaceChildren();
  for (const [kind, k] of Object.entries(o.by_kind || {})) {
    kinds.append(el("li", { "data-kind": kind }, L("offer_kind_line", { kind: OFFER_KIND[kind] || kind, offered: k.offered,
      accepted: k.accepted, declined: k.declined, rate: pct(k.acceptance_rate) })));
  }
}

// Agent assist (/api/stats "assist"): suggestions shown to agents, used, ignored, use rate; per kind; one-click actions.
const ASSIST_KIND = { kb: L("assist_kb"), order: L("assist_order"), flow: L("assist_flow") };
const ASSIST_ACTION = { create_return: L("assist_action_create_return"), resend_invoice: L("assist_action_resend_invoice") };
function renderAssist(a) {
  a = a || { calls: 0, shown: 0, used: 0, ignored: 0, use_rate: null, by_kind: {}, actions: {} };
  const tile = (id, label, value, sub) => el("div", { class: "kpi", id: `assist-${id}` },
    el("div", { class: "label" }, label), el("div", { class: "value" }, value), el("div", { class: "sub" }, sub));
  const acts = Object.entries(a.actions || {})
    .map(([k, n]) => L("assist_action_count", { action: ASSIST_ACTION[k] || k, n })).join(L("list_sep"));
  document.getElementById("assist-tiles").replaceChildren(
    tile("shown", L("assist_shown"), a.shown, L("assist_shown_sub", { n: a.calls })),
    tile("used", L("assist_used"), a.used, acts ? L("assist_used_sub", { actions: acts }) : L("assist_used_none")),
    tile("ignored", L("assist_ignored"), a.ignored, L("assist_ignored_sub", { n: a.dismissed ?? 0 })),
    tile("rate", L("assist_rate"), pct(a.use_rate), L("assist_rate_sub")));
  const kinds = document.getElementById("assist-kinds");
  kinds.replaceChildren();
  for (const [kind, k] of Object.entries(a.by_kind || {})) {
    kinds.append(el("li", { "data-kind": kind }, L("assist_kind_line", { kind: ASSIST_KIND[kind] || kind, shown: k.shown,
      used: k.used, ignored: k.ignored, rate: pct(k.use_rate) })));
  }
}

function pickChannel(channel) {
  const sel = document.getElementById("channel");
  if (![...sel.options].some((o) => o.value === channel)) sel.append(el("option", { value: channel }, channelNames[channel] || channel));
  sel.value = channel;
  load();
}

function renderUnrecognised(groups) {
  const body = document.querySelector("#unrecognised tbody");
  body.replaceChildren();
  if (!groups.length) body.append(el("tr", {}, el("td", { colspan: "5", class: "hint" }, L("unrecognised_none"))));
  for (const g of groups) {
    const calls = el("td", {});
    for (const id of g.example_call_ids) calls.append(el("a", { href: "#", class: "call",
      onclick: (e) => { e.preventDefault(); showCall(id); } }, id));
    const variants = g.variants.filter((v) => v.text !== g.text)
      .map((v) => L("variant", { text: v.text, n: v.count })).join(L("variant_sep"));
    body.append(el("tr", {}, el("td", {}, g.text), el("td", {}, g.count), el("td", {}, variants || "—"),
      el("td", {}, g.suggested_intent || "—"), calls));
  }
}

function renderLocks(locks) {
  const body = document.querySelector("#locked-orders tbody");
  body.replaceChildren();
  const orders = (locks && locks.orders) || [];
  if (!orders.length) body.append(el("tr", {}, el("td", { colspan: "4", class: "hint" }, L("locks_none"))));
  for (const o of orders) {
    body.append(el("tr", {}, el("td", {}, o.order_id), el("td", {}, o.failures),
      el("td", {}, o.last_failure ? when(o.last_failure) : "—"), el("td", {}, o.until ? when(o.until) : "—")));
  }
}

async function drill(filter, title) {
  const p = query();
  for (const [k, v] of Object.entries(filter)) p.set(k, v);
  p.set("limit", "100");
  const data = await getJSON(`/api/stats/calls?${p}`);
  document.getElementById("drill").hidden = false;
  document.getElementById("drill-title").textContent = L("drill_title", { title, n: data.total });
  const body = document.querySelector("#calls tbody");
  body.replaceChildren();
  for (const c of data.calls) {
    body.append(el("tr", { class: "clickable", "data-call": c.call_id, onclick: () => showCall(c.call_id) },
      el("td", {}, when(c.started_at)), el("td", {}, channelNames[c.channel_group] || c.channel),
      el("td", {}, c.caller || "—"), el("td", {}, OUTCOME[c.outcome] || c.outcome), el("td", {}, secs(c.handle_time_s)),
      el("td", {}, c.csat ?? "—"), el("td", {}, c.turns), el("td", {}, c.transfer_reason || "")));
  }
  document.getElementById("calls-more").textContent = data.total > data.calls.length ? L("calls_more", { n: data.calls.length }) : "";
  document.getElementById("drill").scrollIntoView({ block: "start" });
}

async function showCall(id) {
  const c = await getJSON(`/api/stats/calls/${encodeURIComponent(id)}`);
  document.getElementById("transcript").hidden = false;
  document.getElementById("transcript-title").textContent = L("transcript_title", { id: c.call_id });
  const meta = document.getElementById("transcript-meta");
  meta.replaceChildren();
  const add = (k, v) => meta.append(el("dt", {}, k), el("dd", {}, v ?? "—"));
  add(L("channel"), `${channelNames[c.channel] || c.channel}`); add(L("col_caller"), c.caller || "—");
  add(L("col_outcome"), OUTCOME[c.outcome] || c.outcome); add(L("col_duration"), secs(c.handle_time_s));
  add(L("col_csat"), c.csat ?? "—"); add(L("col_transfer_reason"), c.transfer_reason || "—");
  add(L("meta_ended"), `${c.ended_by} / ${c.end_reason}`); add(L("meta_feedback"), c.feedback || "—");
  const list = document.getElementById("transcript-turns");
  list.replaceChildren();
  for (const t of c.turns) {
    const li = el("li", { "data-turn": t.index });
    if (t.caller_text || t.kind === "no_input") {
      const who = t.kind === "dtmf" ? L("speaker_dtmf") : t.speaker === "agent" ? L("speaker_caller_agent") : L("speaker_caller");
      li.append(el("div", { class: "caller" }, L("speaker_line", { who }), t.kind === "no_input" ? L("no_input") : t.caller_text));
    }
    const tags = [t.intent && el("span", { class: "tag" }, `${t.intent} ${t.confidence == null ? "" : num(t.confidence, 2)}`),
      t.latency_ms != null && el("span", { class: "tag" }, `${num(t.latency_ms, 0)} ms`),
      t.actions.includes("no_match") && el("span", { class: "tag warn" }, L("tag_no_match")),
      t.sentiment != null && t.sentiment <= -0.3 && el("span", { class: "tag warn" }, L("tag_sentiment", { v: num(t.sentiment, 2) })),
      t.barged_in && el("span", { class: "tag" }, L("tag_barged_in"))].filter(Boolean);
    li.append(el("div", { class: "bot" }, t.speaker === "agent" ? L("speaker_agent") : L("speaker_bot"), t.bot_text || "—", ...tags));
    list.append(li);
  }
  document.getElementById("transcript").scrollIntoView({ block: "start" });
}

async function load() {
  const status = document.getElementById("status");
  status.className = "status";
  status.textContent = L("loading");
  const p = query();
  document.getElementById("export").href = `/api/stats/export.csv?${p}`;
  try {
    const s = await getJSON(`/api/stats?${p}`);
    current = s;
    shopTz = s.period.timezone || shopTz;
    const sel = document.getElementById("channel");
    const have = new Set([...sel.options].map((o) => o.value));
    for (const g of s.channel_groups || []) {
      channelNames[g.channel] = g.label;
      if (!have.has(g.channel)) { sel.append(el("option", { value: g.channel }, g.label)); have.add(g.channel); }
    }
    for (const c of s.channels) if (!have.has(c)) sel.append(el("option", { value: c }, L("raw_channel", { channel: c })));
    renderKpis(s.kpis);
    renderChannels(s);
    renderAssist(s.assist);
    renderCharts(s);
    renderUnrecognised(s.unrecognised);
    renderLocks(s.self_service_locks);
    document.dispatchEvent(new CustomEvent("ivr:stats", { detail: { stats: s, query: p.toString() } }));
    const from = s.period.from ? when(s.period.from) : L("status_earliest");
    status.textContent = L("status_line", { from, to: when(s.period.to),
      channel: channelNames[s.channel] || s.channel || L("all_channels"), n: s.kpis.calls });
    window.ivrDashboard = { ready: true, stats: s };
  } catch (e) {
    status.className = "status error";
    status.textContent = L("load_failed", { error: e.message });
    window.ivrDashboard = { ready: true, error: e.message };
  }
}

document.getElementById("period").addEventListener("change", (e) => {
  document.getElementById("filters").classList.toggle("show-custom", e.target.value === "custom");
});
document.getElementById("filters").addEventListener("submit", (e) => { e.preventDefault(); load(); });
document.getElementById("channel").addEventListener("change", load);
load();
