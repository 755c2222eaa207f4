// Agent desktop ringing: a ring tone made with WebAudio (no sound file) and a desktop notification.
// window.ivrRinger(stats) -> {unlock(), start(title, body), stop()}; stats.ringing, stats.ringBursts,
// stats.ringPeak (loudest level of the tone actually generated), stats.notified (notifications shown).
window.ivrRinger = function (stats) {
  "use strict";
  let ctx = null, gain = null, analyser = null, timer = null, meter = null, note = null;
  const ON_MS = 1000, OFF_MS = 2000;  // ring cadence: 1 s on, 2 s off, like a desk phone

  function context() {
    if (ctx) return ctx;
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return null;
    ctx = new AC();
    gain = ctx.createGain(); gain.gain.value = 0;
    analyser = ctx.createAnalyser(); analyser.fftSize = 1024;
    [440, 480].forEach((hz) => {  // two tones, a familiar phone ring
      const osc = ctx.createOscillator(); osc.frequency.value = hz; osc.connect(gain); osc.start();
    });
    gain.connect(analyser); analyser.connect(ctx.destination);
    return ctx;
  }

  // Browsers start audio only after a user gesture: call on a click (示闲) so a later ring is heard.
  function unlock() {
    const c = context();
    if (c && c.state === "suspended") c.resume().catch(() => {});
    if ("Notification" in window && Notification.permission === "default") {
      Notification.requestPermission().catch(() => {});
    }
  }

  function burst() {
    if (!gain) return;
    const t = ctx.currentTime;
    gain.gain.setValueAtTime(0.0, t);
    gain.gain.linearRampToValueAtTime(0.15, t + 0.02);
    gain.gain.setValueAtTime(0.15, t + ON_MS / 1000 - 0.02);
    gain.gain.linearRampToValueAtTime(0.0, t + ON_MS / 1000);
    stats.ringBursts += 1;
  }

  function start(title, body) {
    stop();
    stats.ringing = true;
    const c = context();
    if (c) {
      if (c.state === "suspended") c.resume().catch(() => {});
      burst();
      timer = setInterval(burst, ON_MS + OFF_MS);
      const buf = new Float32Array(analyser.fftSize);
      meter = setInterval(() => {
        analyser.getFloatTimeDomainData(buf);
        let s = 0; for (let i = 0; i < buf.length; i++) s += buf[i] * buf[i];
        stats.ringPeak = Math.max(stats.ringPeak, Math.sqrt(s / buf.length));
      }, 50);
    }
    if ("Notification" in window && Notification.permission === "granted") {
      try {
        note = new Notification(title, { body: body, tag: "ivr-offer", requireInteraction: true });
        note.onclick = () => { window.focus(); note.close(); };
        stats.notified += 1;
      } catch (e) { console.warn("no desktop notification", e); }
    }
  }

  function stop() {
    stats.ringing = false;
    clearInterval(timer); clearInterval(meter); timer = meter = null;
    if (gain) { gain.gain.cancelScheduledValues(ctx.currentTime); gain.gain.setValueAtTime(0, ctx.currentTime); }
    if (note) { note.close(); note = null; }
  }

  return { unlock: unlock, start: start, stop: stop };
};
