// Service-health dashboard: /api/stats -> KPI tiles + Chart.js charts; drill-down KPI -> calls -> transcript.
// Texts from records are inserted with textContent only (never as HTML).
"use strict";

const OUTCOME = { self_served: "自助解决", transferred: "转人工", callback: "回拨", abandoned: "放弃", failed: "失败",
  in_progress: "进行中" };
const OUTCOME_COLOR = { self_served: "#2e9d5b", transferred: "#2f6fd6", callback: "#8e5bd6", abandoned: "#e08a1e",
  failed: "#c0392b" };
const KPIS = [
  { key: "calls", label: "通话量", fmt: (k) => k.calls, sub: (k) => `进行中 ${k.in_progress}` },
  { key: "containment", label: "自助解决率", fmt: (k) => pct(k.containment), sub: (k) => `${k.self_served} 通` },
  { key: "transfer_rate", label: "转人工率", fmt: (k) => pct(k.transfer_rate), sub: (k) => `${k.transferred} 通` },
  { key: "abandonment", label: "放弃率", fmt: (k) => pct(k.abandonment), sub: (k) => `${k.abandoned} 通` },
  { key: "callback_rate", label: "回拨率", fmt: (k) => pct(k.callback_rate), sub: (k) => `${k.callback} 通` },
  { key: "calls", id: "aht", label: "平均处理时长", fmt: (k) => secs(k.aht_s), sub: () => "接通到挂断" },
  { key: "fcr", label: "首次解决率", fmt: (k) => pct(k.fcr), sub: (k) => `${k.fcr_resolved}/${k.fcr_eligible} 位来电` },
  { key: "csat", label: "满意度", fmt: (k) => num(k.csat_avg, 2), sub: (k) => `${k.csat_count} 个评分` },
  { key: "latency", label: "延迟 p50 / p95", fmt: (k) => `${num(k.latency_p50_ms, 0)} / ${num(k.latency_p95_ms, 0)}`,
    sub: (k) => `毫秒，${k.latency_turns} 轮` },
  { key: "calls", id: "asr", label: "识别置信度", fmt: (k) => num(k.asr_confidence_avg, 2), sub: (k) => `${k.asr_turns} 句` },
  { key: "offers", label: "个性化推荐接受率", fmt: (k) => pct(k.offer_acceptance_rate),
    sub: (k) => `推荐 ${k.offers_offered} 次，接受 ${k.offers_accepted} 次` },
];
const KPI_TITLE = { calls: "全部通话", containment: "自助解决的通话", transfer_rate: "转人工的通话", abandonment: "放弃的通话",
  callback_rate: "回拨的通话", fcr: "首次解决的通话", csat: "有满意度评分的通话", latency: "含高延迟（≥p95）轮次的通话",
  offers: "做过个性化推荐的联络", offers_accepted: "接受了推荐的联络" };
const OFFER_KIND = { accessory: "配件券", coupon: "品类券", restock: "到货提醒" };
let channelNames = {};  // channel or channel group -> its label (from /api/stats channel_groups)

const charts = {};
window.ivrCharts = charts;
let current = null;
let shopTz = "Asia/Shanghai";  // the period's timezone (from /api/stats): buckets and times are shop time

function when(iso) { return new Date(iso).toLocaleString("zh-CN", { hour12: false, timeZone: shopTz }); }

function pct(x) { return x == null ? "—" : `${(x * 100).toFixed(1)}%`; }
function num(x, d) { return x == null ? "—" : Number(x).toFixed(d); }
function secs(x) { return x == null ? "—" : (x >= 60 ? `${Math.floor(x / 60)}分${Math.round(x % 60)}秒` : `${x.toFixed(1)}秒`); }

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
    { label: "自助解决", data: s.series.map((p) => p.self_served), backgroundColor: OUTCOME_COLOR.self_served },
    { label: "转人工", data: s.series.map((p) => p.transferred), backgroundColor: OUTCOME_COLOR.transferred },
    { label: "放弃", data: s.series.map((p) => p.abandoned), backgroundColor: OUTCOME_COLOR.abandoned },
    { label: "其他", data: s.series.map(other), backgroundColor: "#9aa7b5" },
  ] }, options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } } });
  chart("chart-containment", { type: "line", data: { labels, datasets: [{ label: "自助解决率 %", spanGaps: true,
    data: s.series.map((p) => (p.containment == null ? null : p.containment * 100)), borderColor: "#2e9d5b",
    backgroundColor: "#2e9d5b33", fill: true }] }, options: { scales: { y: { min: 0, max: 100 } } } });
  chart("chart-csat", { type: "line", data: { labels, datasets: [{ label: "平均分", spanGaps: true,
    data: s.series.map((p) => p.csat_avg), borderColor: "#d69a2f", backgroundColor: "#d69a2f" }] },
  options: { scales: { y: { min: 1, max: 5 } } } });
  const dist = s.kpis.csat_distribution;
  chart("chart-csat-dist", { type: "bar", data: { labels: ["1分", "2分", "3分", "4分", "5分"], datasets: [{ label: "评分次数",
    data: ["1", "2", "3", "4", "5"].map((k) => dist[k]),
    backgroundColor: ["#c0392b", "#e67e22", "#f1c40f", "#7dbb4a", "#2e9d5b"] }] },
  options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
    onClick: (_e, els) => { if (els.length) drill({ csat: els[0].index + 1 }, `满意度 ${els[0].index + 1} 分的通话`); } } });
  chart("chart-latency", { type: "line", data: { labels, datasets: [
    { label: "p50", data: s.series.map((p) => p.latency_p50_ms), borderColor: "#2f6fd6", backgroundColor: "#2f6fd6", spanGaps: true },
    { label: "p95", data: s.series.map((p) => p.latency_p95_ms), borderColor: "#c0392b", backgroundColor: "#c0392b", spanGaps: true },
  ] }, options: { scales: { y: { beginAtZero: true } } } });
  chart("chart-sentiment", { type: "line", data: { labels, datasets: [
    { label: "平均情绪（-1 ~ 1）", data: s.sentiment.series.map((p) => p.avg), borderColor: "#8e5bd6",
      backgroundColor: "#8e5bd6", spanGaps: true, yAxisID: "y" },
    { label: "负面占比 %", data: s.sentiment.series.map((p) => (p.negative_share == null ? null : p.negative_share * 100)),
      borderColor: "#c0392b", backgroundColor: "#c0392b", borderDash: [4, 3], spanGaps: true, yAxisID: "y1" },
  ] }, options: { scales: { y: { min: -1, max: 1 }, y1: { position: "right", min: 0, max: 100, grid: { drawOnChartArea: false } } } } });
  const intents = s.intents.slice(0, 20);
  const names = s.intent_labels || {};
  chart("chart-intents", { type: "bar", data: { labels: intents.map((i) => names[i.intent] || i.intent), datasets: [{ label: "次数",
    data: intents.map((i) => i.count), backgroundColor: "#2f6fd6" }] },
  options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
    onClick: (_e, els) => { if (els.length) { const i = intents[els[0].index].intent; drill({ intent: i }, `意图 ${i} 的通话`); } } } });
}

// Per-channel KPIs (voice-sip, voice-webrtc, chat, webhook): a row filters the whole page to its channel.
function renderChannels(s) {
  const body = document.querySelector("#channel-kpis tbody");
  body.replaceChildren();
  for (const c of s.by_channel || []) {
    const offers = c.offers_made ? `${c.offers_accepted}/${c.offers_made}（${pct(c.offer_acceptance_rate)}）` : "—";
    body.append(el("tr", { class: "clickable", "data-channel": c.channel, onclick: () => pickChannel(c.channel) },
      el("td", {}, c.label), el("td", {}, c.calls), el("td", {}, pct(c.containment)), el("td", {}, pct(c.transfer_rate)),
      el("td", {}, c.csat_count ? `${num(c.csat_avg, 2)}（${c.csat_count}）` : "—"), el("td", {}, secs(c.aht_s)),
      el("td", {}, offers)));
  }
  const o = s.offers || { by_kind: {} };
  const kinds = document.getElementById("offer-kinds");
  kinds.replaceChildren();
  for (const [kind, k] of Object.entries(o.by_kind || {})) {
    kinds.append(el("li", { "data-kind": kind }, `${OFFER_KIND[kind] || kind}：推荐 ${k.offered}，接受 ${k.accepted}，` +
      `婉拒 ${k.declined}，接受率 ${pct(k.acceptance_rate)}`));
  }
}

// Agent assist (/api/stats "assist"): suggestions shown to agents, used, ignored, use rate; per kind; one-click actions.
const ASSIST_KIND = { kb: "知识库答案", order: "订单信息", flow: "办理步骤" };
const ASSIST_ACTION = { create_return: "创建退货", resend_invoice: "重发发票" };
function renderAssist(a) {
  a = a || { calls: 0, shown: 0, used: 0, ignored: 0, use_rate: null, by_kind: {}, actions: {} };
  const tile = (id, label, value, sub) => el("div", { class: "kpi", id: `assist-${id}` },
    el("div", { class: "label" }, label), el("div", { class: "value" }, value), el("div", { class: "sub" }, sub));
  const acts = Object.entries(a.actions || {}).map(([k, n]) => `${ASSIST_ACTION[k] || k} ${n}`).join("，");
  document.getElementById("assist-tiles").replaceChildren(
    tile("shown", "提示展示", a.shown, `${a.calls} 通人工联络`),
    tile("used", "已采用", a.used, acts ? `一键办理：${acts}` : "一键办理：无"),
    tile("ignored", "未采用", a.ignored, `其中主动忽略 ${a.dismissed ?? 0}`),
    tile("rate", "采用率", pct(a.use_rate), "采用 / 展示"));
  const kinds = document.getElementById("assist-kinds");
  kinds.replaceChildren();
  for (const [kind, k] of Object.entries(a.by_kind || {})) {
    kinds.append(el("li", { "data-kind": kind }, `${ASSIST_KIND[kind] || kind}：展示 ${k.shown}，采用 ${k.used}，` +
      `未采用 ${k.ignored}，采用率 ${pct(k.use_rate)}`));
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
  if (!groups.length) body.append(el("tr", {}, el("td", { colspan: "5", class: "hint" }, "本时段没有未识别的说法")));
  for (const g of groups) {
    const calls = el("td", {});
    for (const id of g.example_call_ids) calls.append(el("a", { href: "#", class: "call",
      onclick: (e) => { e.preventDefault(); showCall(id); } }, id));
    const variants = g.variants.filter((v) => v.text !== g.text).map((v) => `${v.text}（${v.count}）`).join("、");
    body.append(el("tr", {}, el("td", {}, g.text), el("td", {}, g.count), el("td", {}, variants || "—"),
      el("td", {}, g.suggested_intent || "—"), calls));
  }
}

function renderLocks(locks) {
  const body = document.querySelector("#locked-orders tbody");
  body.replaceChildren();
  const orders = (locks && locks.orders) || [];
  if (!orders.length) body.append(el("tr", {}, el("td", { colspan: "4", class: "hint" }, "目前没有锁定的订单")));
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
  document.getElementById("drill-title").textContent = `${title}（共 ${data.total} 通）`;
  const body = document.querySelector("#calls tbody");
  body.replaceChildren();
  for (const c of data.calls) {
    body.append(el("tr", { class: "clickable", "data-call": c.call_id, onclick: () => showCall(c.call_id) },
      el("td", {}, when(c.started_at)), el("td", {}, channelNames[c.channel_group] || c.channel),
      el("td", {}, c.caller || "—"), el("td", {}, OUTCOME[c.outcome] || c.outcome), el("td", {}, secs(c.handle_time_s)),
      el("td", {}, c.csat ?? "—"), el("td", {}, c.turns), el("td", {}, c.transfer_reason || "")));
  }
  document.getElementById("calls-more").textContent = data.total > data.calls.length ? `仅显示最近 ${data.calls.length} 通` : "";
  document.getElementById("drill").scrollIntoView({ block: "start" });
}

async function showCall(id) {
  const c = await getJSON(`/api/stats/calls/${encodeURIComponent(id)}`);
  document.getElementById("transcript").hidden = false;
  document.getElementById("transcript-title").textContent = `通话 ${c.call_id}`;
  const meta = document.getElementById("transcript-meta");
  meta.replaceChildren();
  const add = (k, v) => meta.append(el("dt", {}, k), el("dd", {}, v ?? "—"));
  add("渠道", `${channelNames[c.channel] || c.channel}`); add("来电", c.caller || "—"); add("结果", OUTCOME[c.outcome] || c.outcome);
  add("时长", secs(c.handle_time_s)); add("满意度", c.csat ?? "—"); add("转人工原因", c.transfer_reason || "—");
  add("结束", `${c.ended_by} / ${c.end_reason}`); add("反馈", c.feedback || "—");
  const list = document.getElementById("transcript-turns");
  list.replaceChildren();
  for (const t of c.turns) {
    const li = el("li", { "data-turn": t.index });
    if (t.caller_text || t.kind === "no_input") {
      const who = t.kind === "dtmf" ? "按键" : t.speaker === "agent" ? "来电（人工）" : "来电";
      li.append(el("div", { class: "caller" }, `${who}：`, t.kind === "no_input" ? "（无应答）" : t.caller_text));
    }
    const tags = [t.intent && el("span", { class: "tag" }, `${t.intent} ${t.confidence == null ? "" : num(t.confidence, 2)}`),
      t.latency_ms != null && el("span", { class: "tag" }, `${num(t.latency_ms, 0)} ms`),
      t.actions.includes("no_match") && el("span", { class: "tag warn" }, "未识别"),
      t.sentiment != null && t.sentiment <= -0.3 && el("span", { class: "tag warn" }, `情绪 ${num(t.sentiment, 2)}`),
      t.barged_in && el("span", { class: "tag" }, "被打断")].filter(Boolean);
    li.append(el("div", { class: "bot" }, t.speaker === "agent" ? "坐席：" : "机器人：", t.bot_text || "—", ...tags));
    list.append(li);
  }
  document.getElementById("transcript").scrollIntoView({ block: "start" });
}

async function load() {
  const status = document.getElementById("status");
  status.className = "status";
  status.textContent = "加载中…";
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
    for (const c of s.channels) if (!have.has(c)) sel.append(el("option", { value: c }, `${c}（原始渠道）`));
    renderKpis(s.kpis);
    renderChannels(s);
    renderAssist(s.assist);
    renderCharts(s);
    renderUnrecognised(s.unrecognised);
    renderLocks(s.self_service_locks);
    document.dispatchEvent(new CustomEvent("ivr:stats", { detail: { stats: s, query: p.toString() } }));
    const from = s.period.from ? when(s.period.from) : "最早";
    status.textContent = `${from} 至 ${when(s.period.to)}（北京时间），` +
      `${channelNames[s.channel] || s.channel || "全部渠道"}，共 ${s.kpis.calls} 通已结束的通话`;
    window.ivrDashboard = { ready: true, stats: s };
  } catch (e) {
    status.className = "status error";
    status.textContent = `加载失败：${e.message}`;
    window.ivrDashboard = { ready: true, error: e.message };
  }
}

document.getElementById("period").addEventListener("change", (e) => {
  document.getElementById("filters").classList.toggle("show-custom", e.target.value === "custom");
});
document.getElementById("filters").addEventListener("submit", (e) => { e.preventDefault(); load(); });
document.getElementById("channel").addEventListener("change", load);
load();
