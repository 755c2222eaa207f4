// The page's words come from the language pack (ivr/lang/<pack>/ui/*.yaml), handed over by the template as
// <script type="application/json" id="ui-text">. L("key") is the text; L("key", {n: 3}) fills its {n}.
// A missing key is logged and shown as the key itself (tests/test_lang_ui.py checks every key the scripts use).
(function () {
  "use strict";
  const el = document.getElementById("ui-text");
  const TEXT = JSON.parse((el && el.textContent) || "{}");
  window.L = function (key, fields) {
    const text = TEXT[key];
    if (typeof text !== "string") { console.error("ui text missing: " + key); return key; }
    if (!fields) return text;
    return text.replace(/\{(\w+)\}/g, (m, name) => (name in fields ? String(fields[name]) : m));
  };
})();
