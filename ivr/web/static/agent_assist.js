// Agent assist panel: live suggestions during a call (knowledge-base answers, order facts, the flow's next step)
// from the desktop's "assist" events, "采用" / "忽略" counted on the call record, and one-click shop actions
// (create a return, resend an invoice) that run only after the agent confirms what the server previews.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const LABELS = { create_return: L("action_create_return"), resend_invoice: L("action_resend_invoice") };  // ui/agent.yaml
  // Exposed for tests and debugging.
  const state = (window.ivrAssistState = { callId: null, suggestions: [], shownAt: {}, updates: 0, used: [],
    dismissed: [], pending: null, results: [] });

  async function post(path, body) {
    const res = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}) });
    if (res.status === 401) { location.href = "/login?next=/agent"; throw new Error("login"); }
    return res;
  }

  function base() { return "/api/agent/calls/" + encodeURIComponent(state.callId); }

  function button(text, cls, onClick) {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = text; if (cls) b.className = cls;
    b.addEventListener("click", onClick);
    return b;
  }

  function mark(id, what) {  // "used" or "ignored", counted once on the server
    const list = what === "used" ? state.used : state.dismissed;
    if (list.includes(id)) return;
    list.push(id);
    post(base() + "/assist/" + encodeURIComponent(id) + "/" + what).catch(() => {});
  }

  function render() {
    const ol = $("suggestions"); ol.innerHTML = "";
    $("assist").hidden = !state.callId;
    state.suggestions.filter((s) => !state.dismissed.includes(s.id)).forEach((s) => {
      const li = document.createElement("li");
      li.className = s.kind + (state.used.includes(s.id) ? " used" : "");
      li.dataset.id = s.id;
      const t = document.createElement("div"); t.className = "title"; t.textContent = s.title; li.appendChild(t);
      if (s.heard) {
        const h = document.createElement("div"); h.className = "heard"; h.textContent = L("heard", { text: s.heard });
        li.appendChild(h);
      }
      const x = document.createElement("div"); x.className = "text"; x.textContent = s.text; li.appendChild(x);
      const bar = document.createElement("div"); bar.className = "buttons";
      (s.actions || []).forEach((a) => bar.appendChild(button(LABELS[a] || a, "do", () => ask(a, s.id))));
      bar.appendChild(button(L("use"), "use", () => { mark(s.id, "used"); render(); }));
      bar.appendChild(button(L("ignore"), "ignore", () => { mark(s.id, "ignored"); render(); }));
      li.appendChild(bar);
      ol.appendChild(li);
    });
  }

  function show(ev) {
    if (!ev || (state.callId && ev.call_id !== state.callId)) return;
    state.callId = ev.call_id;
    state.suggestions = ev.suggestions || [];
    state.updates += 1;
    const now = Date.now();
    state.suggestions.forEach((s) => { if (!(s.id in state.shownAt)) state.shownAt[s.id] = now; });
    render();
  }

  async function load(callId) {
    if (!callId) return;
    if (state.callId !== callId) clear();
    state.callId = callId; render();
    const res = await fetch(base() + "/assist");
    if (res.ok) show(await res.json());
  }

  function clear() {
    Object.assign(state, { callId: null, suggestions: [], shownAt: {}, used: [], dismissed: [], pending: null });
    $("confirm").hidden = true; $("action-result").hidden = true;
    render();
  }

  function actionBody(extra) {
    const p = state.pending;
    const body = { action: p.action, suggestion_id: p.suggestionId };
    if (p.action === "create_return") { body.reason = $("return-reason").value; body.pickup = $("return-pickup").value; }
    return Object.assign(body, extra || {});
  }

  function result(text, failed) {
    const el = $("action-result");
    el.textContent = text; el.hidden = false; el.className = "action-result" + (failed ? " failed" : "");
  }

  async function ask(action, suggestionId) {  // step 1: the server says what it would do; nothing is written
    state.pending = { action: action, suggestionId: suggestionId };
    $("return-options").hidden = action !== "create_return";
    const res = await post(base() + "/actions", actionBody());
    const body = await res.json().catch(() => ({}));
    if (!res.ok) { state.pending = null; result(L("action_refused", { error: body.error || res.status }), true); return; }
    state.pending.preview = body.preview;
    $("confirm-text").textContent = L("confirm_ask", { preview: body.preview });
    $("confirm").hidden = false;
  }

  async function confirm() {  // step 2: the write, after the agent confirmed
    if (!state.pending) return;
    $("confirm-yes").disabled = true;
    try {
      const res = await post(base() + "/actions", actionBody({ confirm: true }));
      const body = await res.json().catch(() => ({}));
      state.results.push({ status: res.status, ...body });
      if (res.ok) { result(body.text, false); mark(state.pending.suggestionId, "used"); }
      else result(L("action_failed", { error: body.error || res.status }), true);
    } finally {
      $("confirm-yes").disabled = false; $("confirm").hidden = true; state.pending = null; render();
    }
  }

  $("confirm-yes").addEventListener("click", confirm);
  $("confirm-no").addEventListener("click", () => { state.pending = null; $("confirm").hidden = true; });
  window.ivrAssist = { show: show, load: load, clear: clear };
})();
