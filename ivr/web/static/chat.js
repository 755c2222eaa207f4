// The web chat (/chat): creates a conversation over POST /api/chat/sessions, then talks over the WebSocket
// (falls back to POST .../messages when the socket is down). State for tests: window.ivrChat.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const list = $("messages"), quick = $("quick"), input = $("input"), send = $("send"), status = $("status");
  const chat = (window.ivrChat = { sessionId: null, ready: false, closed: false, messages: [], error: "" });
  let token = null, ws = null, seen = 0;

  function setStatus(text) { status.textContent = text; }

  function field(dl, name, value) {
    if (value === null || value === undefined || value === "") return;
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = name; dd.textContent = value; dl.append(dt, dd);
  }

  function card(c) {
    const box = document.createElement("section");
    box.className = "card order-card";
    box.dataset.order = c.order_id;
    const h = document.createElement("h2");
    h.textContent = L("order_title", { id: c.order_id });
    const dl = document.createElement("dl");
    field(dl, L("order_status"), c.status_text);
    field(dl, L("order_items"), (c.items || []).map((i) => L("order_item", { name: i.name, quantity: i.quantity }))
      .join(L("order_items_sep")));
    field(dl, L("order_total"), L("money", { amount: c.total }));
    field(dl, L("order_created"), c.created);
    if (c.shipment) {
      field(dl, L("order_shipment"), c.shipment.carrier + " " + c.shipment.tracking_no);
      field(dl, L("order_latest"), c.shipment.latest);
      field(dl, L("order_eta"), c.shipment.eta);
    }
    (c.refunds || []).forEach((r) => field(dl, L("order_refund"),
      L("order_refund_line", { amount: L("money", { amount: r.amount }), status: r.status })));
    box.append(h, dl);
    return box;
  }

  function show(msg) {
    if (msg.seq && msg.seq <= seen) return;
    if (msg.seq) seen = msg.seq;
    chat.messages.push(msg);
    const li = document.createElement("li");
    li.className = "msg " + msg.role;
    if (msg.role === "agent") {  // a person took over (the agent desktop)
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = msg.agent ? L("agent_named", { name: msg.agent }) : L("agent");
      li.append(who);
      setStatus(msg.agent ? L("status_agent_named", { name: msg.agent }) : L("status_agent"));
    }
    const b = document.createElement("div");
    b.className = "bubble";
    b.textContent = msg.text;
    li.append(b);
    (msg.cards || []).forEach((c) => li.append(card(c)));
    list.append(li);
    list.scrollTop = list.scrollHeight;
    if (msg.role === "bot") buttons(msg.quick_replies || []);
    if (msg.end) finished();  // a transfer stays open: the chat waits for a person (or ends with a callback)
  }

  function buttons(items) {
    quick.replaceChildren();
    items.forEach((q) => {
      const btn = document.createElement("button");
      btn.type = "button";
      btn.textContent = q.label;
      btn.dataset.key = q.key;
      btn.addEventListener("click", () => say({ key: q.key, label: q.label }));
      quick.append(btn);
    });
  }

  function finished() {
    chat.closed = true;
    input.disabled = send.disabled = true;
    quick.replaceChildren();
    setStatus(L("status_ended"));
    $("restart").hidden = false;
  }

  async function api(method, path, body) {
    const r = await fetch(path, {
      method, headers: { "Content-Type": "application/json", "X-Chat-Token": token || "" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = r.status === 204 ? {} : await r.json();
    if (!r.ok) throw new Error(data.error || "HTTP " + r.status);
    return data;
  }

  function say(msg) {
    if (chat.closed) return;
    quick.replaceChildren();
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "message", ...msg }));
      return;
    }
    api("POST", "/api/chat/sessions/" + chat.sessionId + "/messages", msg)
      .then((d) => d.messages.forEach(show))
      .catch((e) => {
        chat.error = String(e.message || e);
        setStatus(L("status_send_failed", { error: chat.error }));
      });
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(proto + "//" + location.host + "/api/chat/sessions/" + chat.sessionId + "/ws");
    ws.addEventListener("open", () => ws.send(JSON.stringify({ type: "auth", token })));
    ws.addEventListener("message", (ev) => {
      const f = JSON.parse(ev.data);
      if (f.type === "history") {
        f.messages.forEach(show);
        chat.ready = true;
        if (!chat.closed) setStatus(L("status_connected"));
      } else if (f.type === "message") show(f.message);
      else if (f.type === "closed") finished();
      else if (f.type === "error") { chat.error = f.error; setStatus(f.error); }
    });
    ws.addEventListener("close", () => { if (!chat.closed) setStatus(L("status_socket_closed")); });
  }

  async function begin() {
    list.replaceChildren(); quick.replaceChildren();
    seen = 0; chat.messages = []; chat.closed = false; chat.ready = false; chat.error = "";
    $("restart").hidden = true;
    try {
      const d = await api("POST", "/api/chat/sessions", {});
      chat.sessionId = d.session_id; token = d.chat_token;
      d.messages.forEach(show);
      input.disabled = send.disabled = false;
      input.focus();
      connect();
    } catch (e) {
      chat.error = String(e.message || e);
      setStatus(L("status_connect_failed", { error: chat.error }));
    }
  }

  $("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    say({ text });
  });
  $("restart").addEventListener("click", begin);
  window.addEventListener("pagehide", () => {
    if (chat.sessionId && !chat.closed) {
      fetch("/api/chat/sessions/" + chat.sessionId, { method: "DELETE", keepalive: true,
        headers: { "X-Chat-Token": token || "" } });
    }
  });
  begin();
})();
