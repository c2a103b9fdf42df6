// Live updates over one authenticated Socket.IO connection per page.
// The server decides the rooms; this script only reacts. Every page works
// without it; with it, the board and job pages update without a reload and
// nothing is missed or doubled across a dropped connection (the server
// replays everything after the page's delivery cursor).
(function () {
  "use strict";
  if (typeof window.io !== "function") { return; }
  // The delivery cursor: this person's notifications are numbered 1, 2, 3 ... in
  // the order they committed, with no gaps.  `cursor` is the highest number up to
  // which this page has every notification; the server renders the page at its
  // current cursor and replays everything after it on every (re)connect.  A
  // notification that arrives ahead of a missing one waits in `ahead` until the
  // gap fills, so a live message overtaking an earlier one can never make the
  // page skip it.  Kept in memory only: it belongs to the person the page was
  // rendered for, never to the browser (a shared tablet has several people).
  var cursor = parseInt(document.body.getAttribute("data-notification-cursor") || "0", 10) || 0;
  var ahead = {};
  var seen = {};
  var gapTimer = null;
  var socket = window.io({
    transports: ["websocket", "polling"],
    auth: function (cb) { cb({ cursor: cursor }); }
  });

  // True the first time a notification arrives, false for a repeat (replayed and
  // live, or sent twice by two instances): each is shown and counted once.
  function fresh(message) {
    if (!message || typeof message.seq !== "number") { return true; }
    if (message.seq <= cursor || seen[message.id]) { return false; }
    seen[message.id] = true;
    ahead[message.seq] = true;
    while (ahead[cursor + 1]) { delete ahead[cursor + 1]; cursor += 1; }
    if (Object.keys(ahead).length && !gapTimer) {
      // Something overtook a notification that has not arrived: ask for it.
      gapTimer = window.setTimeout(function () {
        gapTimer = null;
        if (Object.keys(ahead).length) { socket.emit("replay", { cursor: cursor }); }
      }, 2000);
    }
    return true;
  }

  function bumpBadge() {
    var badge = document.getElementById("unread-badge");
    if (!badge) { return; }
    badge.textContent = String((parseInt(badge.textContent, 10) || 0) + 1);
    badge.hidden = false;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  var board = document.querySelector("[data-live=board]");
  var jobPage = document.querySelector("[data-live=job]");
  var machinePage = document.querySelector("[data-live=machine]");
  var bookingPage = document.querySelector("[data-live=booking]");
  var lang = document.documentElement.lang || "en";

  function jobCard(job, link) {
    var trades = JSON.parse(board.getAttribute("data-trades") || "{}");
    var li = el("li", "card job-card fresh");
    li.setAttribute("data-job-id", String(job.id));
    var h2 = el("h2");
    var a = el("a", "", job.title);
    a.href = link || ("/jobs/" + job.id);
    h2.appendChild(a);
    li.appendChild(h2);
    var chips = el("p");
    (job.trades || []).forEach(function (t) { chips.appendChild(el("span", "chip", trades[t] || t)); });
    li.appendChild(chips);
    var value = new Intl.NumberFormat(lang, { style: "currency", currency: job.currency })
      .format(job.value_minor / 100);
    li.appendChild(el("p", "", value));
    li.appendChild(el("p", "hint", job.locality));
    if (job.mode === "handoff") {
      // One tap to claim, exactly like the server-rendered cards.
      var form = el("form");
      form.method = "post";
      form.action = "/jobs/" + job.id + "/claim";
      var token = el("input");
      token.type = "hidden";
      token.name = "csrf_token";
      token.value = board.getAttribute("data-csrf") || "";
      form.appendChild(token);
      form.appendChild(el("button", "button primary big", board.getAttribute("data-claim-label")));
      li.appendChild(form);
    }
    return li;
  }

  function removeCard(jobId) {
    if (!board) { return; }
    var card = board.querySelector("[data-job-id='" + jobId + "']");
    if (card) { card.remove(); }
    var empty = document.getElementById("board-empty");
    if (empty && !board.children.length) { empty.hidden = false; }
  }

  // Re-fetch this page and swap in the sections with these ids (the server
  // renders them, so what each viewer may see stays decided there).  A section
  // the fresh page no longer has goes (the bid form once the window closed).
  function refreshSections(ids) {
    window.fetch(window.location.href, { headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        ids.forEach(function (id) {
          var now = document.getElementById(id);
          var next = fresh.getElementById(id);
          if (now && next) { now.replaceWith(next); } else if (now) { now.remove(); }
        });
      });
  }

  function onEvent(kind, message) {
    if (!fresh(message)) { return; }
    bumpBadge();
    var data = message.data || {};
    var jobId = data.id || data.job_id;
    if (board && kind === "job.posted" && !board.querySelector("[data-job-id='" + data.id + "']")) {
      board.insertBefore(jobCard(data, message.link), board.firstChild);
      var empty = document.getElementById("board-empty");
      if (empty) { empty.hidden = true; }
    }
    if (board && (kind === "job.taken" || kind === "job.cancelled" || kind === "job.claimed")) {
      removeCard(jobId);
    }
    if (jobPage && String(jobId) === jobPage.getAttribute("data-job-id")) {
      refreshSections(["job", "bids", "place-bid"]);
    }
    if (machinePage && kind.indexOf("booking.") === 0 &&
        String(data.equipment_id) === machinePage.getAttribute("data-equipment-id")) {
      refreshSections(["week"]);
    }
    if (bookingPage && kind.indexOf("booking.") === 0 &&
        String(data.id) === bookingPage.getAttribute("data-booking-id")) {
      refreshSections(["booking"]);
    }
    document.dispatchEvent(new CustomEvent("marketplace:event", { detail: { kind: kind, message: message } }));
  }

  // Every event the server sends to this person is a stored notification
  // (jobs, bookings, rotation hand-overs ...): count it and react where it matters.
  socket.onAny(function (kind, message) { onEvent(kind, message); });
  window.marketplaceSocket = socket;
})();
