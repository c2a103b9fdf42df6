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
  // An event comes live as one message per language (also to a single reader:
  // its form must not tell who else got it), which carries no number of ours (it
  // would have to differ per person) but the event's `batch` key.  Such a message
  // is shown at once and its key kept in `unnumbered`; the page sends those keys
  // with its cursor (on every connect, and in a sync a little later, at a random
  // moment so a thousand phones do not ask at once).  The server then sends no
  // body for them, only a "sync" with their numbers, and replays whatever else
  // came after the cursor -- including anything whose live message was lost.
  //
  // A shared message of an event from before the page was built may be one the page
  // already shows (the server rendered it, and counted it in the badge).  Such a
  // message is held, not shown, and the page asks for a sync at once: a number
  // after the cursor means it is new (shown then), a key the server does not know
  // after the cursor means the page has it (dropped).
  //
  // A live message can also be lost on the way (a full queue, a process stopped,
  // Redis away for a moment).  So the page also asks for what came after its
  // cursor when it becomes visible again and every few minutes (at a random
  // moment): the answer is empty unless something was lost.
  var HAVE_MOST = 100;  // keys sent at most (the server takes 200)
  var SYNC_AFTER_MS = [20000, 60000];  // a sync this long after a shared message
  var GAP_MS = 2000;
  var HOLD_MS = 300;  // held messages arriving together share one sync
  var CATCH_UP_MS = [180000, 360000];  // a catch-up this often while the page is open
  var cursor = parseInt(document.body.getAttribute("data-notification-cursor") || "0", 10) || 0;
  var builtAt = instant(document.body.getAttribute("data-notification-at"));
  var ahead = {};
  var seen = {};  // ids of numbered notifications already taken
  var shown = {};  // batch keys already shown, whichever way they came
  var unnumbered = [];  // batch keys shown (or held) from a shared message, not numbered yet
  var held = {};  // batch key -> shared message from before the page, until a sync says
  var released = {};  // batch keys a sync has just said are new: shown once, now
  var gapTimer = null;
  var syncTimer = null;
  var holdTimer = null;
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

  // Milliseconds of an ISO time; one without a zone is UTC, as the server writes it.
  function instant(text) {
    if (!text) { return NaN; }
    return Date.parse(/(Z|[+-]\d\d:?\d\d)$/i.test(text) ? text : text + "Z");
  }

  // Catching up costs one query that finds nothing when nothing was lost.
  function catchUp() {
    if (socket.connected) { sync(); }
  }

  function catchUpLater() {
    window.setTimeout(function () { catchUp(); catchUpLater(); },
                      CATCH_UP_MS[0] + Math.random() * (CATCH_UP_MS[1] - CATCH_UP_MS[0]));
  }

  // True the first time a notification arrives, false for a repeat (replayed and
  // live, or sent twice by two instances): each is shown and counted once.
  function fresh(message) {
    if (!message) { return true; }
    var key = message.batch;
    if (typeof message.seq !== "number") {
      if (!key) { return true; }
      if (released[key]) { delete released[key]; shown[key] = true; return true; }
      if (shown[key] || held[key]) { return false; }
      if (instant(message.created_at) <= builtAt) {
        held[key] = message;  // perhaps already on the page: the sync decides
        unnumbered.push(key);
        if (!holdTimer) {
          holdTimer = window.setTimeout(function () {
            holdTimer = null;
            if (unnumbered.length) { sync(); }
          }, HOLD_MS);
        }
        return false;
      }
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
    if (key && held[key]) {  // numbered after the cursor: new to the page after all
      delete held[key];
      numbered(key);
      shown[key] = true;
      return true;
    }
    if (key && numbered(key)) { return false; }  // shown already, from the shared message
    if (key) { shown[key] = true; }
    return true;
  }

  // The server's answer to the keys this page sent: their numbers, and the keys no
  // notification after the cursor has (nothing to wait for).
  function onSync(answer) {
    var fresher = [];
    ((answer && answer.matched) || []).forEach(function (pair) {
      if (pair[0] > cursor) { ahead[pair[0]] = true; }
      numbered(pair[1]);
      if (held[pair[1]]) { fresher.push(held[pair[1]]); delete held[pair[1]]; }
    });
    ((answer && answer.unknown) || []).forEach(function (key) {
      numbered(key);
      delete held[key];  // at or before the cursor: the page has it
    });
    advance();
    fresher.forEach(function (message) {
      released[message.batch] = true;
      onEvent(message.kind, message);
    });
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
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") { catchUp(); }
  });
  catchUpLater();
  window.marketplaceSocket = socket;
})();
