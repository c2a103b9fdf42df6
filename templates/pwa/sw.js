// The marketplace's service worker, rendered by marketplace/pwa.py for each deploy
// and language (the values below come from the server).
//
// Pages are never kept here: each one carries a person's data and a CSRF token,
// so navigations always go to the network, and only when that fails does the
// phone get the (impersonal) offline page.  CSS, scripts and icons have
// content-hashed URLs that never change meaning, so those come from the cache.
"use strict";

var CACHE = {{ cache_name|tojson }};
var SHELL = {{ shell|tojson }};
var OFFLINE_URL = {{ offline_url|tojson }};
var ICON = {{ icon|tojson }};
var BADGE = {{ badge|tojson }};
var FALLBACK_TITLE = {{ fallback_title|tojson }};  // for a push that is not ours to read
var FALLBACK_BODY = {{ fallback_body|tojson }};
var PUSH_KEY = {{ (vapid_public_key() if vapid_public_key is defined else '')|tojson }};
var TOKEN_PAGE = {{ token_page|tojson }};  // a logged-in page: its <meta name="csrf-token">
var SUBSCRIBE_URL = "/push/subscriptions";
var REMOVE_URL = "/push/subscriptions/remove";

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE)
    .then(function (cache) { return cache.addAll(SHELL); })
    .then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys()
    .then(function (names) {  // every cache of this origin is one of ours
      return Promise.all(names.filter(function (name) { return name !== CACHE; })
        .map(function (name) { return caches.delete(name); }));
    })
    .then(function () {
      // The page request starts while the worker boots: no extra wait on a weak signal.
      return self.registration.navigationPreload && self.registration.navigationPreload.enable();
    })
    .then(function () { return self.clients.claim(); }));
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") { return; }  // forms and JSON go straight to the server
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (request.mode === "navigate") {
    event.respondWith(page(event));
  } else if (url.pathname.indexOf("/static/") === 0 || url.pathname.indexOf("/vendor/") === 0) {
    event.respondWith(asset(event));
  }
});

// Network first; the offline page only when there is no answer at all (an error
// page from the server is still the server's answer).
function page(event) {
  return Promise.resolve(event.preloadResponse)
    .then(function (preloaded) { return preloaded || fetch(event.request); })
    .catch(function () {
      return caches.match(OFFLINE_URL, { cacheName: CACHE }).then(function (offline) {
        return offline || Response.error();
      });
    });
}

// Cache first.  Only answers the server marks immutable (the URL carries the file's
// current hash) are kept: a stale ?v= is answered with other bytes.
function asset(event) {
  var request = event.request;
  return caches.match(request, { cacheName: CACHE }).then(function (cached) {
    if (cached) { return cached; }
    return fetch(request).then(function (response) {
      if (response.ok && /immutable/.test(response.headers.get("Cache-Control") || "")) {
        var copy = response.clone();
        event.waitUntil(caches.open(CACHE).then(function (cache) {
          return cache.put(request, copy);
        }));
      }
      return response;
    }, function (error) {  // offline: any version of the file beats none
      return caches.match(request, { cacheName: CACHE, ignoreSearch: true })
        .then(function (any) { if (any) { return any; } throw error; });
    });
  });
}

// Only a path of this site ("/jobs/42"), never another site ("//evil.example").
function sitePath(url) {
  if (typeof url !== "string" || url.charAt(0) !== "/" || url.charAt(1) === "/" ||
      url.charAt(1) === "\\") {
    return "/";
  }
  var parsed = new URL(url, self.location.origin);
  return parsed.origin === self.location.origin ? parsed.pathname + parsed.search + parsed.hash : "/";
}

function readPush(event) {
  try {
    var message = event.data ? event.data.json() : null;
    return message && typeof message === "object" ? message : {};
  } catch (error) {
    return {};  // not JSON: still show something (userVisibleOnly promises it)
  }
}

self.addEventListener("push", function (event) {
  event.waitUntil(notify(readPush(event)));
});

function notify(message) {
  var title = typeof message.title === "string" && message.title ? message.title : FALLBACK_TITLE;
  var body = typeof message.body === "string" ? message.body : "";
  var id = message.id === undefined ? null : message.id;
  var seq = typeof message.seq === "number" ? message.seq : null;
  var tag = typeof message.tag === "string" ? message.tag : "";
  var options = {
    body: body || (title === FALLBACK_TITLE ? FALLBACK_BODY : ""),
    icon: ICON, badge: BADGE, lang: typeof message.lang === "string" ? message.lang : "",
    data: { url: sitePath(message.url), id: id, seq: seq }
  };
  if (tag) {  // a newer notice about the same job replaces the older one, and rings again
    options.tag = tag;
    options.renotify = true;
  }
  var showing = tag ? self.registration.getNotifications({ tag: tag }) : Promise.resolve([]);
  return showing.catch(function () { return []; }).then(function (shown) {
    // The same notification again (the server resent it after a crash), or an older
    // one arriving late (push services keep no order) must not replace what is on
    // screen; that notification also satisfies the browser's "always show something".
    var outdated = shown.some(function (n) {
      var data = n.data || {};
      return (id !== null && data.id === id) ||
        (seq !== null && typeof data.seq === "number" && data.seq > seq);
    });
    if (outdated) { return undefined; }
    return self.registration.showNotification(title, options);
  });
}

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var data = event.notification.data || {};
  event.waitUntil(openPage(sitePath(data.url)));
});

// Reuse a window of the app when there is one (it has the session and the live
// connection); focus() is only allowed during the browser's own click event.
function openPage(path) {
  var target = new URL(path, self.location.origin).href;
  return self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (windows) {
    var win = windows.filter(function (w) { return w.focused; })[0] || windows[0];
    if (!win) { return self.clients.openWindow(target); }
    return win.focus().catch(function () { return win; })
      .then(function (focused) { return (focused || win).navigate(target); })
      .catch(function () { return self.clients.openWindow(target); });  // not ours to steer
  });
}

// The push service replaced the subscription (rare; Firefox does it): tell the
// server the new one.  Best effort: the account page can always turn it on again.
self.addEventListener("pushsubscriptionchange", function (event) {
  event.waitUntil(resubscribe(event.oldSubscription, event.newSubscription));
});

function resubscribe(old, fresh) {
  var key = (old && old.options && old.options.applicationServerKey) ||
    (PUSH_KEY ? base64UrlBytes(PUSH_KEY) : null);
  var next = fresh ? Promise.resolve(fresh) : key
    ? self.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key })
    : Promise.reject(new Error("push is off"));
  return Promise.all([next, csrfToken()]).then(function (both) {
    var subscription = both[0];
    var sent = [postJson(SUBSCRIBE_URL, subscription.toJSON(), both[1])];
    if (old && old.endpoint !== subscription.endpoint) {
      sent.push(postJson(REMOVE_URL, { endpoint: old.endpoint }, both[1]));
    }
    return Promise.all(sent);
  }).catch(function () { return undefined; });
}

// A worker has no page to read the CSRF token from, so it reads a fresh one from a
// logged-in page (a redirect to the login page means the session is gone: give up).
function csrfToken() {
  return fetch(TOKEN_PAGE, { credentials: "same-origin", redirect: "manual" })
    .then(function (response) { return response.ok ? response.text() : ""; })
    .then(function (html) {
      var found = /<meta name="csrf-token" content="([^"]+)"/.exec(html);
      if (!found) { throw new Error("logged out"); }
      return found[1];
    });
}

function postJson(url, data, token) {
  return fetch(url, {
    method: "POST", credentials: "same-origin", body: JSON.stringify(data),
    headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": token }
  });
}

function base64UrlBytes(text) {
  var binary = atob((text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/"));
  var bytes = new Uint8Array(binary.length);
  for (var i = 0; i < binary.length; i += 1) { bytes[i] = binary.charCodeAt(i); }
  return bytes;
}
