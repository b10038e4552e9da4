// triggerlang dashboard: a run's page. Opens its log at the end, and while the run goes,
// appends new lines as they are written (server-sent events from /dashboard/runs/ID/stream)
// and keeps the end in view unless the user scrolled up ("follow the end" brings it back).
// Line numbers are CSS counters (not copied with the text), left out when the page does not
// have the log from its first line (class "cut"); stderr lines have the class "err".
(function () {
  "use strict";
  var box = document.getElementById("log-box");
  var logEl = document.getElementById("log");
  var follow = document.getElementById("follow");
  var empty = document.getElementById("log-empty");
  var badge = document.getElementById("live");
  if (!box || !logEl) return;

  var following = true;
  function atEnd() { return box.scrollHeight - box.scrollTop - box.clientHeight < 8; }
  function toEnd() { box.scrollTop = box.scrollHeight; }
  function showFollow() { if (follow) follow.hidden = following; }
  box.addEventListener("scroll", function () {
    following = atEnd();
    showFollow();
  }, { passive: true });
  if (follow) follow.addEventListener("click", function () { following = true; toEnd(); showFollow(); });
  toEnd(); // a long log opens at its end

  var streamAttr = logEl.getAttribute("data-stream");
  if (!streamAttr || !window.EventSource) return;
  var url = new URL(streamAttr, window.location.href);
  var source = null;
  var ended = false;

  function state(s, text) { if (badge) { badge.setAttribute("data-state", s); badge.textContent = text; } }

  function append(lines) {
    if (!lines.length) return;
    var keep = following;
    var frag = document.createDocumentFragment();
    lines.forEach(function (pair) {
      var div = document.createElement("div");
      div.className = pair[0] === "out" ? "l" : "l " + pair[0];
      if (pair[2]) { // a line with colours: [text, classes] pieces (the classes are the server's a-*)
        pair[2].forEach(function (piece) {
          if (!piece[1]) { div.appendChild(document.createTextNode(piece[0])); return; }
          var span = document.createElement("span");
          span.className = piece[1];
          span.textContent = piece[0];
          div.appendChild(span);
        });
      } else {
        div.textContent = pair[1];
      }
      frag.appendChild(div);
    });
    logEl.appendChild(frag);
    if (empty) empty.hidden = true;
    if (keep) toEnd();
  }

  function connect() {
    source = new EventSource(url.toString());
    source.onopen = function () { state("on", "live"); };
    source.addEventListener("lines", function (e) {
      var m = JSON.parse(e.data);
      if (m.skipped) {
        logEl.classList.add("cut"); // the lines skipped are not counted: no line numbers from here
        var gap = document.createElement("div");
        gap.className = "l meta";
        gap.textContent = "\u2026 (output skipped: it came faster than this page read it; the download has all of it)";
        logEl.appendChild(gap);
      }
      append(m.lines);
      url.searchParams.set("offset", String(m.offset));
    });
    source.addEventListener("status", function (e) {
      var m = JSON.parse(e.data);
      var summary = document.getElementById("summary");
      if (summary && m.html) {
        summary.innerHTML = m.html;
        if (window.triggerlangTimes) window.triggerlangTimes(summary);
      }
    });
    source.addEventListener("end", function (e) {
      ended = true;
      source.close();
      state("off", "finished");
      // the page's one live region: a screen reader hears that the run is over, and how
      var said = document.getElementById("announce"), m = JSON.parse(e.data || "{}");
      if (said && m.status) said.textContent = document.title.split(" \u00b7 ")[0] + " " + m.status.replace("_", " ");
    });
    source.addEventListener("reconnect", function () { source.close(); connect(); });
    source.onerror = function () {
      source.close();
      if (ended) return;
      state("retry", "reconnecting");
      window.setTimeout(connect, 2000);
    };
  }
  connect();
})();
