// The dashboard's cost and value section: drawn from the "cost" object of /api/stats (dashboard.js dispatches
// "ivr:stats" after each load). Money in CNY; texts inserted with textContent only.
"use strict";

(function () {
  const CHANNEL = { webrtc: "网页电话", sip: "电话（SIP）", webchat: "在线聊天", chat: "在线聊天（控制台）", messaging: "消息平台" };
  const SOURCE = { configured: "按设置", measured: "按本期人工通话实测", default: "无人工通话，按默认" };

  function yuan(x) { return x == null ? "—" : `¥${Number(x).toFixed(2)}`; }
  function mins(x) { return x == null ? "—" : `${Number(x).toFixed(1)}分钟`; }

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
    document.getElementById("cost-rates").textContent =
      `坐席每小时 ¥${r.agent_cost_per_hour}，机器人每通 ¥${r.bot_cost_per_call}；每通自助解决节省坐席时长 ` +
      `${Number(r.avg_agent_handle_s).toFixed(0)} 秒（${SOURCE[r.avg_agent_handle_source] || r.avg_agent_handle_source}）`;
    document.getElementById("cost-tiles").replaceChildren(
      tile("contained", "自助解决通话", t.contained, `共 ${t.calls} 通`),
      tile("minutes", "节省坐席时长", mins(t.agent_minutes_saved), "自助解决 × 平均人工处理时长"),
      tile("saved", "节省金额", yuan(t.money_saved), "已扣除机器人成本"),
      tile("per-resolved", "每个已解决联络的成本", yuan(t.cost_per_resolved), `已解决 ${t.resolved} 通，总成本 ${yuan(t.total_cost)}`));
    document.getElementById("cost-export").href = `/api/stats/cost.csv?${e.detail.query}`;
    rows("#cost-channel tbody", c.by_channel, (k) => CHANNEL[k] || k);
    rows("#cost-intent tbody", c.by_intent, (k) => labels[k] || (k === "other" ? "其他" : k));
  });
})();
