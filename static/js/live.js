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
  //
  // One event for many people comes live as one message per language, which
  // carries no number of ours (it would have to differ per person) but the
  // event's `batch` key.  Such a message is shown at once and its key kept in
  // `unnumbered`; the page sends those keys with its cursor (on every connect,
  // and in a sync a little later, at a random moment so a thousand phones do not
  // ask at once).  The server then sends no body for them, only a "sync" with
  // their numbers, and replays whatever else came after the cursor -- including
  // anything whose live message was lost.
  var HAVE_MOST = 100;  // keys sent at most (the server takes 200)
  var SYNC_AFTER_MS = [20000, 60000];  // a sync this long after a shared message
  var GAP_MS = 2000;
  var cursor = parseInt(document.body.getAttribute("data-notification-cursor") || "0", 10) || 0;
  var ahead = {};
  var seen = {};  // ids of numbered notifications already taken
  var shown = {};  // batch keys already shown, whichever way they came
  var unnumbered = [];  // batch keys shown from a shared message, not numbered yet
  var gapTimer = null;
  var syncTimer = null;
  var socket = window.io({
    transports: ["websocket", "polling"],
    auth: function (cb) { cb({ cursor: cursor, have: unnumbered.slice(-HAVE_MOST) }); }
  });

  function advance() {
    while (ahead[cursor + 1]) { delete ahead[cursor + 1]; cursor += 1; }
  }

  function numbered(key) {
    var at = unnumbered.indexOf(key);
    if (at >= 0) { unnumbered.splice(at, 1); }
    return at >= 0;
  }

  function sync() {
    socket.emit("replay", { cursor: cursor, have: unnumbered.slice(-HAVE_MOST) });
  }

  // True the first time a notification arrives, false for a repeat (replayed and
  // live, or sent twice by two instances): each is shown and counted once.
  function fresh(message) {
    if (!message) { return true; }
    var key = message.batch;
    if (typeof message.seq !== "number") {
      if (!key) { return true; }
      if (shown[key]) { return false; }
      shown[key] = true;
      unnumbered.push(key);
      if (!syncTimer) {
        var wait = unnumbered.length >= HAVE_MOST ? 0 : SYNC_AFTER_MS[0] +
          Math.random() * (SYNC_AFTER_MS[1] - SYNC_AFTER_MS[0]);
        syncTimer = window.setTimeout(function () {
          syncTimer = null;
          if (unnumbered.length) { sync(); }
        }, wait);
      }
      return true;
    }
    if (message.seq <= cursor || seen[message.id] || ahead[message.seq]) { return false; }
    seen[message.id] = true;
    ahead[message.seq] = true;
    advance();
    if (Object.keys(ahead).length && !gapTimer) {
      // Something overtook a notification that has not arrived (or that came in a
      // shared message): ask for it.
      gapTimer = window.setTimeout(function () {
        gapTimer = null;
        if (Object.keys(ahead).length) { sync(); }
      }, GAP_MS);
    }
    if (key && numbered(key)) { return false; }  // shown already, from the shared message
    if (key) { shown[key] = true; }
    return true;
  }

  // The server's answer to the keys this page sent: their numbers, and the keys no
  // notification after the cursor has (nothing to wait for).
  function onSync(answer) {
    ((answer && answer.matched) || []).forEach(function (pair) {
      if (pair[0] > cursor) { ahead[pair[0]] = true; }
      numbered(pair[1]);
    });
    ((answer && answer.unknown) || []).forEach(numbered);
    advance();
  }

  function bumpBadge() {
    var badge = document.getElementById("unread-badge");
    if (!badge) { return; }
    badge.textContent = String((parseInt(badge.textContent, 10) || 0) + 1);
    badge.hidden = false;
  }

  var board = document.querySelector("[data-live=board]");
  var jobPage = document.querySelector("[data-live=job]");
  var machinePage = document.querySelector("[data-live=machine]");
  var bookingPage = document.querySelector("[data-live=booking]");
  // Board cards come from the server (GET /jobs/<id>/card): the same function and
  // template as the board's own cards, for this person's audience and language, so a
  // live card and a reloaded card are the same markup and the barrier stays on the
  // server.  `then` gets the card element, or null when the job is not this person's
  // to see (404) or the answer is not a card; a failed network changes nothing (the
  // next reload shows the board as it is).
  function fetchCard(jobId, then) {
    window.fetch("/jobs/" + encodeURIComponent(jobId) + "/card",
                 { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { then(null); return; }
        var holder = document.createElement("template");
        holder.innerHTML = html.trim();
        var card = holder.content.firstElementChild;
        then(card && card.matches(".job-card") ? card : null);
      }, function () {});
  }

  function cardOf(jobId) {
    return board ? board.querySelector("[data-job-id='" + jobId + "']") : null;
  }

  // A job just posted: its card at the top of the board, once.  The highlight is an
  // animation, not a class, so the card's markup stays exactly the server's.
  function insertCard(jobId) {
    if (!board || cardOf(jobId)) { return; }
    fetchCard(jobId, function (card) {
      if (!card || cardOf(jobId)) { return; }
      board.insertBefore(card, board.firstChild);
      if (card.animate) {
        card.animate([{ boxShadow: "0 0 0 3px #b5d8c1" }, { boxShadow: "0 0 0 0 transparent" }],
                     { duration: 4000, easing: "ease-out" });
      }
      var empty = document.getElementById("board-empty");
      if (empty) { empty.hidden = true; }
    });
  }

  // Something happened to a job on the board: its card as the server renders it now.
  function updateCard(jobId) {
    if (!cardOf(jobId)) { return; }
    fetchCard(jobId, function (card) {
      var now = cardOf(jobId);
      if (!now) { return; }
      if (card) { now.replaceWith(card); } else { removeCard(jobId); }
    });
  }

  // Events after which a job can no longer be taken, so it leaves the board.
  var OFF_THE_BOARD = ["job.taken", "job.cancelled", "job.claimed", "job.awarded",
                       "job.expired", "window.closed"];

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
    if (board && jobId && /^(job|window)\./.test(kind)) {
      if (kind === "job.posted") {
        insertCard(jobId);
      } else if (OFF_THE_BOARD.indexOf(kind) >= 0) {
        removeCard(jobId);  // the board lists only jobs this person can still take
      } else {
        updateCard(jobId);
      }
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
  // "sync" is the server's answer about numbers, not a notification.
  socket.on("sync", onSync);
  socket.onAny(function (kind, message) { if (kind !== "sync") { onEvent(kind, message); } });
  window.marketplaceSocket = socket;
})();
