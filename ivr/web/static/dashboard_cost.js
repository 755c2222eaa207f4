// The dashboard's cost and value section: drawn from the "cost" object of /api/stats (dashboard.js dispatches
// "ivr:stats" after each load). Money in CNY; texts inserted with textContent only.
"use strict";

(function () {
  const CHANNEL = { webrtc: L("cost_channel_webrtc"), sip: L("cost_channel_sip"), webchat: L("cost_channel_webchat"),
    chat: L("cost_channel_chat"), messaging: L("cost_channel_messaging") };
  const SOURCE = { configured: L("cost_source_configured"), measured: L("cost_source_measured"),
    default: L("cost_source_default") };

  function yuan(x) { return x == null ? "—" : L("money", { x: Number(x).toFixed(2) }); }
  function mins(x) { return x == null ? "—" : L("minutes", { x: Number(x).toFixed(1) }); }

  function cell(text) { const td = document.createElement("td"); td.textContent = String(text); return td; }

  function tile(id, label, value, sub) {
    const d = document.createElement("div");
    d.className = "kpi";
    d.id = `cost-${id}`;
    const l = document.createElement("div"); l.className = "label"; l.textContent = label;
    const v = document.createElement("div"); v.className = "value"; v.textContent = value;
    const s = document.createElement("div"); s.className = "sub"; s.textContent = sub;
    d.append(l, v, s);
    return d;
  }

  function rows(tbodySel, list, name) {
    const body = document.querySelector(tbodySel);
    body.replaceChildren();
    for (const r of list) {
      const tr = document.createElement("tr");
      tr.dataset.key = r.key;
      tr.append(cell(name(r.key)), cell(r.calls), cell(r.contained), cell(r.resolved), cell(r.agent_calls),
        cell(mins(r.agent_minutes_saved)), cell(yuan(r.money_saved)), cell(yuan(r.total_cost)),
        cell(yuan(r.cost_per_resolved)));
      body.append(tr);
    }
  }

  document.addEventListener("ivr:stats", (e) => {
    const s = e.detail.stats, c = s.cost;
    if (!c) return;
    const t = c.totals, r = c.rates, labels = s.intent_labels || {};
    document.getElementById("cost-rates").textContent = L("cost_rates", {
      agent_per_hour: r.agent_cost_per_hour, bot_per_call: r.bot_cost_per_call,
      handle_s: Number(r.avg_agent_handle_s).toFixed(0),
      source: SOURCE[r.avg_agent_handle_source] || r.avg_agent_handle_source });
    document.getElementById("cost-tiles").replaceChildren(
      tile("contained", L("cost_contained"), t.contained, L("cost_contained_sub", { n: t.calls })),
      tile("minutes", L("cost_minutes"), mins(t.agent_minutes_saved), L("cost_minutes_sub")),
      tile("saved", L("cost_saved"), yuan(t.money_saved), L("cost_saved_sub")),
      tile("per-resolved", L("cost_per_resolved"), yuan(t.cost_per_resolved),
        L("cost_per_resolved_sub", { n: t.resolved, total: yuan(t.total_cost) })));
    document.getElementById("cost-export").href = `/api/stats/cost.csv?${e.detail.query}`;
    rows("#cost-channel tbody", c.by_channel, (k) => CHANNEL[k] || k);
    rows("#cost-intent tbody", c.by_intent, (k) => labels[k] || (k === "other" ? L("cost_intent_other") : k));
  });
})();
