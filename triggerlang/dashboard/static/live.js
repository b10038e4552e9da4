// triggerlang dashboard: live updates over server-sent events, and relative times (no
// build step). The pages work without this script; with it, new runs and events appear,
// and run statuses change, without a reload. The stream sends table rows rendered by the
// server (already escaped), so this only inserts or replaces them.
(function () {
  "use strict";

  // "3 min ago", kept current; the exact UTC time is the element's title.
  function ago(iso) {
    var t = Date.parse(iso);
    if (isNaN(t)) return null;
    var d = (Date.now() - t) / 1000, future = d < 0, text;
    d = Math.abs(d);
    if (d < 10) return future ? "in a moment" : "just now";
    if (d < 60) text = Math.floor(d) + " s";
    else if (d < 3600) text = Math.floor(d / 60) + " min";
    else if (d < 86400) text = Math.floor(d / 3600) + " h";
    else if (d < 30 * 86400) { var n = Math.floor(d / 86400); text = n + (n === 1 ? " day" : " days"); }
    else return new Date(t).toISOString().slice(0, 10);
    return future ? "in " + text : text + " ago";
  }
  function refreshTimes(root) {
    (root || document).querySelectorAll("time[data-rel]").forEach(function (el) {
      var text = ago(el.getAttribute("datetime"));
      if (text !== null && el.textContent !== text) el.textContent = text;
    });
  }
  window.triggerlangTimes = refreshTimes;
  refreshTimes();
  window.setInterval(refreshTimes, 15000);

  // A running run's Duration, "running 1 m 12 s", counted on from the seconds the server
  // rendered (not from its start time: the browser's clock may not be the server's).
  function took(d) {
    if (d < 60) return Math.floor(d) + " s";
    var r = Math.round(d), m = Math.floor(r / 60), s = r % 60;
    if (m < 60) return s ? m + " m " + s + " s" : m + " m";
    var h = Math.floor(m / 60);
    m = m % 60;
    return m ? h + " h " + m + " m" : h + " h";
  }
  function refreshRunning() {
    document.querySelectorAll("[data-running]").forEach(function (el) {
      if (!el.triggerlangT0) el.triggerlangT0 = Date.now() - parseFloat(el.getAttribute("data-running")) * 1000;
      var text = "running " + took((Date.now() - el.triggerlangT0) / 1000);
      if (el.textContent !== text) el.textContent = text;
    });
  }
  window.setInterval(refreshRunning, 1000);

  var board = document.getElementById("board");
  var badge = document.getElementById("live");
  if (!board || !board.hasAttribute("data-stream") || !window.EventSource) return;
  var limit = parseInt(board.getAttribute("data-limit"), 10) || 25;
  var source = null;

  function state(s, text) { if (badge) { badge.setAttribute("data-state", s); badge.textContent = text; } }
  function body(id) { return document.querySelector("#" + id + " tbody"); }

  // What the page shows, so a (re)connect gets exactly what changed since.
  function streamUrl() {
    var url = new URL(board.getAttribute("data-stream"), window.location.href);
    var top = 0;
    var open = [];
    document.querySelectorAll("#runs tr[data-run]").forEach(function (tr) {
      var id = parseInt(tr.getAttribute("data-run"), 10);
      if (id > top) top = id;
      var s = tr.getAttribute("data-status");
      if (s === "queued" || s === "running") open.push(id + ":" + s);
    });
    url.searchParams.set("since_run", String(top));
    url.searchParams.set("open", open.join(","));
    var ev = document.querySelector("#events tr[data-event]");
    if (ev) url.searchParams.set("since_event", ev.getAttribute("data-event"));
    return url.toString();
  }

  function rowFrom(html) {
    var t = document.createElement("template");
    t.innerHTML = html.trim();
    return t.content.firstElementChild;
  }

  function place(tbodyId, attr, msg, newestFirstById) {
    var tbody = body(tbodyId);
    if (!tbody) return;
    var row = rowFrom(msg.html);
    var old = tbody.querySelector("tr[" + attr + '="' + String(msg.id).replace(/"/g, '\\"') + '"]');
    if (old) {
      old.replaceWith(row);
    } else if (msg.update) {
      return; // a change to a row this page does not show
    } else {
      var empty = tbody.querySelector("tr.empty");
      if (empty) empty.remove();
      var before = tbody.firstElementChild;
      if (newestFirstById) {
        while (before && parseInt(before.getAttribute(attr), 10) > msg.id) before = before.nextElementSibling;
      }
      tbody.insertBefore(row, before);
      while (tbody.children.length > limit) tbody.lastElementChild.remove();
    }
    row.classList.add("fresh");
  }

  // The groups page: a group row goes to its rule's open or closed table.
  function placeGroup(msg) {
    var row = rowFrom(msg.html);
    var old = document.querySelector('tr[data-group="' + String(msg.id).replace(/"/g, '\\"') + '"]');
    if (old) old.remove();
    var tbody = body((msg.live ? "open-" : "closed-") + msg.rule);
    if (!tbody) { tbody = body("open-" + msg.rule); }
    if (!tbody) return;  // a rule this page does not show yet: the next reload shows it
    var empty = tbody.querySelector("tr.empty");
    if (empty) empty.remove();
    tbody.insertBefore(row, tbody.firstElementChild);
    row.classList.add("fresh");
    tick();
  }

  // Countdowns to a group's deadline.
  function tick() {
    var now = Date.now();
    document.querySelectorAll("time[data-deadline]").forEach(function (t) {
      var left = Math.round((Date.parse(t.getAttribute("data-deadline")) - now) / 1000);
      if (isNaN(left)) return;
      if (left <= 0) { t.textContent = "due"; return; }
      var h = Math.floor(left / 3600), m = Math.floor(left % 3600 / 60), s = left % 60;
      t.textContent = "in " + (h ? h + "h " : "") + (h || m ? m + "m " : "") + s + "s";
    });
  }
  tick();
  window.setInterval(tick, 1000);

  function connect() {
    source = new EventSource(streamUrl());
    source.onopen = function () { state("on", "live"); };
    source.addEventListener("run", function (e) { place("runs", "data-run", JSON.parse(e.data), true); });
    source.addEventListener("event", function (e) { place("events", "data-event", JSON.parse(e.data), false); });
    source.addEventListener("group", function (e) { placeGroup(JSON.parse(e.data)); });
    source.addEventListener("reconnect", function () {
      // The server ends each stream after a while (so that it can stop promptly): go on at once.
      source.close();
      connect();
    });
    source.onerror = function () {
      // Reconnect ourselves, with a URL that says what the page shows now.
      source.close();
      state("retry", "reconnecting");
      window.setTimeout(connect, 2000);
    };
  }
  connect();
})();
