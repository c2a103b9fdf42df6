// The installable app and Web Push, on the pages of a logged-in person.
//
// Registers the service worker (/sw.js) on every page; on the account page it
// runs the "Notifications on this device" section, on the job board the banner
// offering to turn them on.  Pages work without it: nothing here is needed to
// read, claim, bid or book.  On the offline page it only reloads once the
// phone is back online.
(function () {
  "use strict";
  var body = document.body;
  if (body.hasAttribute("data-offline")) {
    window.addEventListener("online", function () { window.location.reload(); });
    return;
  }
  var userId = body.getAttribute("data-user-id");
  if (!userId || !("serviceWorker" in navigator)) { return showDeviceState("unsupported"); }

  var SUBSCRIBE_URL = "/push/subscriptions";
  var REMOVE_URL = "/push/subscriptions/remove";
  var TOKEN_PAGE = "/account";  // any logged-in page has a fresh <meta name="csrf-token">
  var SNOOZE_MS = 14 * 24 * 3600 * 1000;
  // This browser's subscription belongs to whoever turned it on last (a shared
  // tablet moves it, on the server too), so remember who that was.
  var OWNER_KEY = "marketplace:push-user";
  var VISITS_KEY = "marketplace:board-visits:" + userId;
  var SNOOZE_KEY = "marketplace:push-snoozed-until:" + userId;

  var registered = navigator.serviceWorker.register("/sw.js", { scope: "/" });
  // pushManager.subscribe needs an active worker, which `ready` waits for.
  var ready = registered.then(function () { return navigator.serviceWorker.ready; });
  ready.catch(function () { return undefined; });  // offline, or storage turned off
  var key = meta("vapid-public-key");

  function meta(name) {
    var node = document.querySelector('meta[name="' + name + '"]');
    return node ? node.getAttribute("content") || "" : "";
  }

  function stored(name) {
    try { return window.localStorage.getItem(name); } catch (error) { return null; }
  }

  function store(name, value) {
    try {
      if (value === null) { window.localStorage.removeItem(name); } else { window.localStorage.setItem(name, value); }
    } catch (error) { /* storage full or off: the banner may come back, nothing worse */ }
  }

  // What this browser can do, before asking anything.
  function support() {
    if (!("PushManager" in window) || !("Notification" in window)) {
      // iOS Safari has push only in an app added to the Home Screen (standalone).
      return "standalone" in navigator && !navigator.standalone ? "ios" : "unsupported";
    }
    if (!key) { return "server-off"; }
    return Notification.permission === "denied" ? "blocked" : "ok";
  }

  function base64UrlBytes(text) {
    var binary = window.atob((text + "===".slice((text.length + 3) % 4))
      .replace(/-/g, "+").replace(/_/g, "/"));
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i += 1) { bytes[i] = binary.charCodeAt(i); }
    return bytes;
  }

  function sameKey(subscription, bytes) {
    var current = subscription.options && subscription.options.applicationServerKey;
    if (!current) { return true; }  // the browser does not say: assume it is ours
    var view = new Uint8Array(current);
    return view.length === bytes.length && view.every(function (b, i) { return b === bytes[i]; });
  }

  function subscription() {
    return ready.then(function (registration) { return registration.pushManager.getSubscription(); });
  }

  function mine(sub) { return Boolean(sub) && stored(OWNER_KEY) === userId; }

  function askPermission() {
    return new Promise(function (resolve) {  // older Safari only takes a callback
      var asked = Notification.requestPermission(resolve);
      if (asked && asked.then) { asked.then(resolve); }
    });
  }

  function freshToken() {
    return fetch(TOKEN_PAGE, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var found = /<meta name="csrf-token" content="([^"]+)"/.exec(html);
        if (found) { document.querySelector('meta[name="csrf-token"]').setAttribute("content", found[1]); }
      });
  }

  // POST JSON with the page's CSRF token.  The board stays open for hours and the
  // token expires: on a 400, read a fresh one and try once more.
  function post(url, data, retried) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", body: JSON.stringify(data),
      headers: { "Content-Type": "application/json", "Accept": "application/json",
                 "X-CSRFToken": meta("csrf-token") }
    }).then(function (response) {
      if (response.ok) { return response; }
      if (response.status === 400 && !retried) {
        return freshToken().then(function () { return post(url, data, true); });
      }
      return response.json().catch(function () { return {}; }).then(function (answer) {
        var failure = new Error("refused");
        failure.serverMessage = answer && answer.error && answer.error.message;
        throw failure;
      });
    });
  }

  // Ask, subscribe (reusing this browser's subscription when it has our key) and
  // tell the server.  A refusal of the permission rejects with `.permission` set.
  function turnOn() {
    var bytes = base64UrlBytes(key);
    return askPermission().then(function (permission) {
      if (permission !== "granted") {
        var refused = new Error(permission);
        refused.permission = permission;
        throw refused;
      }
      return ready;
    }).then(function (registration) {
      var manager = registration.pushManager;
      return manager.getSubscription().then(function (sub) {
        if (sub && sameKey(sub, bytes)) { return sub; }
        return (sub ? sub.unsubscribe() : Promise.resolve()).then(function () {
          return manager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes });
        });
      });
    }).then(function (sub) {
      return post(SUBSCRIBE_URL, sub.toJSON()).then(function () { store(OWNER_KEY, userId); });
    });
  }

  // Unsubscribe here first: that stops pushes to this device even if telling the
  // server fails (it then learns it from the push service at the next send).
  function turnOff() {
    return subscription().then(function (sub) {
      store(OWNER_KEY, null);
      if (!sub) { return undefined; }
      var endpoint = sub.endpoint;
      return sub.unsubscribe().then(function () {
        return post(REMOVE_URL, { endpoint: endpoint }).catch(function () { return undefined; });
      });
    });
  }

  // Show one of a box's [data-push-state] messages, and the buttons that fit it.
  function render(box, state, detail) {
    Array.prototype.forEach.call(box.querySelectorAll("[data-push-state]"), function (node) {
      node.hidden = node.getAttribute("data-push-state") !== state;
    });
    var buttons = { on: ["ask", "off", "failed"], off: ["on"], later: ["ask", "failed"] };
    Array.prototype.forEach.call(box.querySelectorAll("[data-push-action]"), function (button) {
      var action = button.getAttribute("data-push-action");
      button.hidden = (buttons[action] || []).indexOf(state) < 0;
    });
    var error = box.querySelector("[data-push-error]");
    if (error) {
      error.textContent = detail || "";
      error.hidden = !detail;
    }
  }

  function showDeviceState(state) {
    var box = document.getElementById("push-device");
    if (box) { render(box, state); }
  }

  function failureState(error) {
    if (error && error.permission) { return error.permission === "denied" ? "blocked" : "off"; }
    return "failed";
  }

  function deviceSection(box) {
    var state = support();
    if (state !== "ok") { return render(box, state); }
    render(box, "checking");
    subscription().then(function (sub) { render(box, mine(sub) ? "on" : "off"); },
      function () { render(box, "unsupported"); });
    box.addEventListener("click", function (event) {
      var button = event.target.closest("[data-push-action]");
      if (!button) { return; }
      var on = button.getAttribute("data-push-action") === "on";
      render(box, "working");
      (on ? turnOn() : turnOff()).then(function () { render(box, on ? "on" : "off"); },
        function (error) {
          var next = failureState(error);
          render(box, next, next === "failed" ? error.serverMessage : "");
        });
    });
  }

  // The board's banner: from the second visit on, while the browser has not been
  // asked yet, unless "Not now" was tapped in the last 14 days.
  function boardPrompt(banner) {
    var visits = (parseInt(stored(VISITS_KEY), 10) || 0) + 1;
    store(VISITS_KEY, String(visits));
    if (visits < 2 || support() !== "ok" || Notification.permission !== "default") { return; }
    if (Date.now() < (parseInt(stored(SNOOZE_KEY), 10) || 0)) { return; }
    subscription().then(function (sub) {
      if (mine(sub)) { return; }
      render(banner, "ask");
      banner.hidden = false;
    }, function () { return undefined; });
    function close(snooze) {
      if (snooze) { store(SNOOZE_KEY, String(Date.now() + SNOOZE_MS)); }
      banner.hidden = true;
    }
    banner.addEventListener("click", function (event) {
      var button = event.target.closest("[data-push-action]");
      if (!button) { return; }
      if (button.getAttribute("data-push-action") === "later") { return close(true); }
      render(banner, "working");
      turnOn().then(function () { render(banner, "on"); window.setTimeout(close, 4000); },
        function (error) {
          if (error && error.permission) { return close(error.permission !== "denied"); }
          render(banner, "failed", error.serverMessage);
        });
    });
  }

  // Logging out turns this device's pushes off: on a shared phone or tablet the
  // next person must not see the last one's notices.  Never holds the person back
  // for more than a moment.
  function unsubscribeOnLogout(form) {
    var leaving = false;
    form.addEventListener("submit", function (event) {
      if (leaving) { return; }
      event.preventDefault();
      function leave() {
        if (leaving) { return; }
        leaving = true;
        form.submit();
      }
      subscription().then(function (sub) { return mine(sub) ? turnOff() : undefined; })
        .then(leave, leave);
      window.setTimeout(leave, 3000);
    });
  }

  // A subscription this browser made for somebody else (a shared tablet where the
  // last person did not log out here, or whose session just ran out) stops now:
  // this person must not get the other's notices on the lock screen.
  function dropSomebodyElses() {
    var owner = stored(OWNER_KEY);
    if (!owner || owner === userId) { return; }
    subscription().then(function (sub) {
      store(OWNER_KEY, null);
      return sub ? sub.unsubscribe() : undefined;
    }).catch(function () { return undefined; });
  }

  if (support() === "ok") { dropSomebodyElses(); }
  var logout = document.querySelector('form[action="/logout"]');
  if (logout && support() === "ok") { unsubscribeOnLogout(logout); }
  var device = document.getElementById("push-device");
  if (device) { deviceSection(device); }
  var banner = document.getElementById("push-prompt");
  if (banner) { boardPrompt(banner); }
}());
