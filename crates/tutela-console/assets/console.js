// tutela console: live queue and case view (server-sent events), ticking clocks, alerts for
// new imminent cases (sound and desktop notification), quick reply templates. No framework, no build step;
// the Content-Security-Policy allows this file and nothing inline.
"use strict";
(function () {
  var skew = 0; // server time minus browser time, seconds

  function fmt(secs, zh) {
    secs = Math.max(0, Math.floor(secs));
    if (secs < 60) return zh ? secs + " 秒" : secs + " s";
    if (secs < 3600) return zh ? Math.floor(secs / 60) + " 分钟" : Math.floor(secs / 60) + " min";
    if (secs < 86400) {
      var h = Math.floor(secs / 3600), m = Math.floor((secs % 3600) / 60);
      return zh ? h + " 小时 " + m + " 分钟" : h + " h " + m + " min";
    }
    return zh ? Math.floor(secs / 86400) + " 天" : Math.floor(secs / 86400) + " d";
  }

  function tick() {
    var zh = document.documentElement.lang.indexOf("zh") === 0;
    var now = Date.now() / 1000 + skew;
    document.querySelectorAll("time[data-since]").forEach(function (t) {
      t.textContent = fmt(now - Number(t.dataset.since), zh);
    });
    var q = document.getElementById("queue");
    document.querySelectorAll(".sla[data-due]").forEach(function (s) {
      var left = Number(s.dataset.due) - now;
      if (!q) return;
      if (left <= 0) {
        s.classList.add("overdue");
        s.textContent = q.dataset.overdue + fmt(-left, zh);
      } else {
        s.textContent = q.dataset.left + fmt(left, zh);
      }
    });
  }

  function beep() {
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      var ctx = new Ctx();
      [0, 0.25].forEach(function (at) {
        var o = ctx.createOscillator(), g = ctx.createGain();
        o.frequency.value = 880; o.connect(g); g.connect(ctx.destination);
        g.gain.setValueAtTime(0.2, ctx.currentTime + at);
        o.start(ctx.currentTime + at); o.stop(ctx.currentTime + at + 0.18);
      });
    } catch (e) { /* no audio: the desktop notification still goes */ }
  }

  function alertNew(ids, q) {
    beep();
    if (window.Notification && Notification.permission === "granted") {
      ids.forEach(function (id) {
        var n = new Notification(q.dataset.newCritical + " #" + id, { tag: "tutela-case-" + id });
        n.onclick = function () { window.focus(); location.href = "/console/cases/" + id; };
      });
    }
    document.title = "(!) " + document.title.replace(/^\(!\) /, "");
  }

  function live() {
    var q = document.getElementById("queue");
    if (!q || !window.EventSource) return;
    skew = Number(q.dataset.now) - Date.now() / 1000;
    var seen = null; // imminent open cases already known
    var status = document.getElementById("live");
    var es = new EventSource(q.dataset.events);
    es.addEventListener("open", function () {
      if (status) { status.textContent = status.dataset.on; status.classList.add("on"); }
    });
    es.addEventListener("error", function () {
      if (status) { status.textContent = status.dataset.off; status.classList.remove("on"); }
      // Closed for good (the session ended): reload, which leads to the sign-in page.
      if (es.readyState === EventSource.CLOSED) { location.reload(); }
    });
    es.addEventListener("queue", function (ev) {
      var d = JSON.parse(ev.data);
      skew = d.now - Date.now() / 1000;
      q.innerHTML = d.html;
      var count = document.getElementById("count");
      if (count) count.textContent = d.count;
      var fresh = seen === null ? [] : d.imminent.filter(function (id) { return seen.indexOf(id) < 0; });
      seen = d.imminent;
      if (fresh.length) alertNew(fresh, q);
      q.dataset.updated = String(Date.now());
      tick();
    });
    var button = document.getElementById("alerts");
    if (button) {
      var on = function () { button.textContent = button.dataset.on; button.disabled = true; };
      if (window.Notification && Notification.permission === "granted") on();
      button.addEventListener("click", function () {
        beep(); // unlocks audio after a user gesture
        if (window.Notification && Notification.permission !== "granted") {
          Notification.requestPermission().then(function (p) { if (p === "granted") on(); });
        } else { on(); }
      });
    }
  }

  // The case view: the conversation comes again whenever it changes, so the person's messages
  // arrive without a reload. When the case's state or holder changes, the page's forms are
  // stale: reload at once unless a reply is being written, then offer a reload instead.
  function liveCase() {
    var turns = document.getElementById("turns");
    if (!turns || !window.EventSource || !turns.dataset.events) return;
    var fromPerson = null;
    var es = new EventSource(turns.dataset.events);
    // A form sent from this page (claim, reply, resolve ...) leads to a fresh page: this one
    // must not change (or reload itself) while that navigation is under way.
    document.addEventListener("submit", function () { es.close(); });
    es.addEventListener("error", function () {
      if (es.readyState === EventSource.CLOSED) { location.reload(); }
    });
    es.addEventListener("case", function (ev) {
      var d = JSON.parse(ev.data);
      var atBottom = turns.scrollHeight - turns.scrollTop - turns.clientHeight < 40;
      turns.innerHTML = d.html;
      if (atBottom) turns.scrollTop = turns.scrollHeight;
      var status = document.getElementById("case-status");
      if (status) status.textContent = d.status;
      var last = document.getElementById("last-from-person");
      if (last) last.dataset.since = String(d.last_from_person);
      if (fromPerson !== null && d.from_person > fromPerson && document.hidden) {
        document.title = "(•) " + document.title.replace(/^\(•\) /, "");
      }
      fromPerson = d.from_person;
      if (d.state !== turns.dataset.state) {
        var reply = document.getElementById("reply-text");
        if (!reply || !reply.value.trim()) { location.reload(); return; }
        var stale = document.getElementById("stale");
        if (stale) stale.hidden = false;
      }
      turns.dataset.updated = String(Date.now());
      tick();
    });
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) document.title = document.title.replace(/^\(•\) /, "");
    });
  }

  function templates() {
    document.querySelectorAll("select[data-fill]").forEach(function (sel) {
      sel.addEventListener("change", function () {
        var target = document.getElementById(sel.dataset.fill);
        if (target && sel.value) { target.value = sel.value; target.focus(); }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    live();
    liveCase();
    templates();
    tick();
    setInterval(tick, 1000);
  });
})();
