// Agent desktop: web chats handed to agents (ivr/channels/agent_leg.py). Loaded after ring.js and before agent.js:
// agent.js rings, shows the card and the live lines (transcript events) as for calls; this file accepts a chat
// offer without a microphone (POST /api/agent/chats/{offer_id}/accept), shows the reply box while the chat is
// live and sends the agent's messages (POST /api/agent/chats/{call_id}/messages). Hang-up and wrap-up are the
// call's. It also lists the customer's earlier contacts on any channel under the card (calls and chats).
// State for tests: window.ivrAgentChat.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const CHAT_CHANNELS = ["webchat"];
  const chat = (window.ivrAgentChat = { active: false, callId: null, sent: [], error: null, ringer: null, history: 0 });

  // agent.js builds its ringer with window.ivrRinger: keep a handle to stop the ring when a chat is accepted here.
  const makeRinger = window.ivrRinger;
  window.ivrRinger = function (stats) { chat.ringer = makeRinger(stats); return chat.ringer; };

  const desk = () => window.ivrDesk || {};
  const isChat = (ctx) => !!ctx && CHAT_CHANNELS.includes(ctx.channel);

  async function post(path, body) {
    const res = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}) });
    if (res.status === 401) { location.href = "/login?next=/agent"; throw new Error("login"); }
    return res;
  }

  async function accept(offer) {
    if (chat.ringer) chat.ringer.stop();
    const res = await post("/api/agent/chats/" + encodeURIComponent(offer.offer_id) + "/accept", {});
    const body = await res.json().catch(() => ({}));
    if (!res.ok) { chat.error = body.error || String(res.status); return; }
    const d = desk();
    d.offer = null; d.callId = body.call_id;
    chat.callId = body.call_id;
    sync();
  }

  // A chat offer's 接听 accepts the chat: stop the click before agent.js asks for the microphone.
  document.addEventListener("click", (e) => {
    const target = e.target && e.target.closest ? e.target.closest("#accept") : null;
    const offer = desk().offer;
    if (!target || !offer || !isChat(offer.context)) return;
    e.stopPropagation(); e.preventDefault();
    accept(offer);
  }, true);

  async function send(e) {
    e.preventDefault();
    const input = $("chat-text"), text = input.value.trim();
    if (!text || !chat.callId) return;
    const res = await post("/api/agent/chats/" + encodeURIComponent(chat.callId) + "/messages", { text: text });
    if (res.status === 204) { input.value = ""; chat.sent.push(text); chat.error = null; }
    else chat.error = ((await res.json().catch(() => ({}))).error || String(res.status));
    $("chat-error").textContent = chat.error ? L("chat_send_failed", { error: chat.error }) : "";
  }

  // Follows agent.js's state (window.ivrDesk): a live chat shows the reply box instead of the audio controls.
  function sync() {
    const d = desk();
    history(d.context);
    const ringingChat = d.presence === "ringing" && d.offer && isChat(d.offer.context);
    const live = d.presence === "busy" && isChat(d.context);
    document.body.classList.toggle("chat-mode", !!(live || ringingChat));
    if (d.presence === "ringing") $("ringing").querySelector("h2").firstChild.textContent = (ringingChat ? L("ringing_chat") : L("ringing_call")) + " ";
    if (live && !chat.active) { chat.callId = d.callId; $("chat-text").focus(); }
    chat.active = !!live;
    $("chat-reply").hidden = !live;
    if (live) $("callstate").textContent = L("callstate_chat");
    $("hangup").textContent = live ? L("hangup_chat") : L("hangup");
  }

  // The customer's earlier contacts on any channel (hand-off "history", ivr/dialog/resume.py), under the card.
  let shownHistory = null;
  function history(ctx) {
    const items = (ctx && ctx.history) || [];
    if (ctx === shownHistory) return;
    shownHistory = ctx;
    const box = $("history");
    box.replaceChildren();
    box.hidden = !items.length;
    if (!items.length) return;
    const h = document.createElement("h3"); h.textContent = L("history_title"); box.append(h);
    const ol = document.createElement("ol");
    items.forEach((c) => {
      const li = document.createElement("li");
      const l = c.labels || {};
      const detail = c.detail || {};
      const what = [l.matter, c.order_id ? L("order_no", { id: c.order_id }) : "",
        detail.rma_id ? L("history_rma", { id: detail.rma_id }) : "",
        detail.ticket_id ? L("history_ticket", { id: detail.ticket_id }) : ""].filter(Boolean).join(" · ");
      const fields = { when: l.when || c.started_at, channel: l.channel || c.channel, what: what };
      li.textContent = what ? L("history_line_what", fields) : L("history_line", fields);
      ol.append(li);
    });
    box.append(ol);
    chat.history = items.length;
  }

  $("chat-reply").addEventListener("submit", send);
  setInterval(sync, 250);
})();
