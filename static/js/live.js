// Live updates over one authenticated Socket.IO connection per page.
// The server decides the rooms; this script only reacts. Every page works
// without it; with it, the board and job pages update without a reload and
// nothing is missed across a dropped connection (the server replays
// everything after the last notification id this browser saw).
(function () {
  "use strict";
  if (typeof window.io !== "function") { return; }
  var LAST_ID_KEY = "marketplace:last-notification-id";
  // Replay starts after the newest notification the page was rendered with (its
  // badge and lists already count those), or after a newer one this browser saw.
  // From 0, a new phone would be sent its whole history: old jobs back on the
  // board and the unread badge counting every notification twice.
  var rendered = parseInt(document.body.getAttribute("data-last-notification-id") || "0", 10);
  var lastId = Math.max(
    parseInt(window.localStorage.getItem(LAST_ID_KEY) || "0", 10) || 0, rendered || 0);
  var socket = window.io({
    transports: ["websocket", "polling"],
    auth: function (cb) { cb({ last_id: lastId }); }
  });

  function remember(message) {
    if (message && message.id > lastId) {
      lastId = message.id;
      window.localStorage.setItem(LAST_ID_KEY, String(lastId));
    }
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
    remember(message);
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
