"""The installable app on a 360x740 touch phone: the service worker, offline, Web Push.

Real Debian chromium, headless.  What headless Chromium cannot do, and the
closest real check used instead:

* It has no push service (no Firebase keys), so `pushManager.subscribe` fails.
  Pushes are delivered to the service worker through the DevTools protocol
  (`ServiceWorker.deliverPushMessage`: the JSON the server encrypts, as the
  browser hands it to the worker once decrypted),
  and the account page's "turn on" runs against a stand-in `subscribe` that
  returns a well-formed subscription; everything after it (the POST with the
  CSRF header, the server storing the row, the page's state) is real.
* Nobody can tap a system notification.  The click is the worker's own
  `notificationclick` handler, dispatched in the worker with a real
  `NotificationEvent` built from `registration.getNotifications()`.  Such a
  script-made event carries no user activation, so the browser refuses
  `focus()` and `clients.openWindow()` for it: the check is that the open
  window of the app is navigated to the job (the path a phone takes when the
  app is open); opening a new window when none is open cannot be exercised.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from flask import Flask
from playwright.sync_api import Browser, BrowserContext, CDPSession, Page, Worker, expect
from playwright.sync_api import Error as PlaywrightError
from sqlmodel import Session, select

from marketplace.db import utcnow
from marketplace.delivery.models import PushSubscription
from marketplace.jobs.service import post_job
from tests.browser.conftest import Phones
from tests.conftest import PASSWORD, World, own_session
from tests.jobs.conftest import give_profile, job_draft
from tests.live import live_server

SMALL_PHONE = {"viewport": {"width": 360, "height": 740}, "has_touch": True, "is_mobile": True}
GREEN = "rgb(31, 111, 67)"  # --green: the header bar, from the cached CSS
ACTIVATED = "() => navigator.serviceWorker.ready.then(r => r.active.state === 'activated')"
CONTROLLED = "() => navigator.serviceWorker.controller !== null"
NOTIFICATIONS = """() => navigator.serviceWorker.ready.then(r => r.getNotifications()).then(
    all => all.map(n => ({title: n.title, body: n.body, tag: n.tag, data: n.data,
                          timestamp: n.timestamp})))"""
# In the worker: count the pushes it has decided on (each reads what is on screen
# first), the notifications it began to show and those the browser has shown, so a
# test knows when a push is done with.  `readShown` reads without counting.
#
# A push is done with only once what it showed is on screen, so nothing reads the
# store while a notification is being shown: on a loaded CI machine a worker that
# polled it during a show did not see the new notification for over 15 s.
WATCH = """() => {
    const registration = self.registration;
    const read = registration.getNotifications.bind(registration);
    const show = registration.showNotification.bind(registration);
    self.handled = 0;
    self.showing = 0;
    self.shown = 0;
    self.readShown = () => read().then(all => all.map(n => n.data.id));
    registration.getNotifications = options => read(options).then(all => {
        self.handled += 1;
        return all;
    });
    registration.showNotification = (title, options) => {
        self.showing += 1;
        return show(title, options).finally(() => { self.shown += 1; });
    };
}"""
# The worker's own read of the notification store can answer later than the page's
# (seen on a loaded CI machine), so the click waits until the worker finds it.
CLICK = """async ([tag]) => {
    const deadline = Date.now() + 20000;
    let [notification] = await self.registration.getNotifications({tag});
    while (!notification && Date.now() < deadline) {
        await new Promise(resolve => setTimeout(resolve, 50));
        [notification] = await self.registration.getNotifications({tag});
    }
    if (!notification) { throw new Error("the worker never saw a notification tagged " + tag); }
    self.dispatchEvent(new NotificationEvent("notificationclick", {notification}));
}"""
# The browser's push service, as headless Chromium has none: a subscription shaped
# like the real one (an FCM endpoint, a 65-byte P-256 key, a 16-byte secret).
FAKE_PUSH_SERVICE = """(() => {
  const KEY = "test:subscription";
  const b64 = bytes => btoa(String.fromCharCode(...bytes))
    .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  const wrap = data => data && {
    endpoint: data.endpoint, options: {userVisibleOnly: true, applicationServerKey: null},
    toJSON: () => ({endpoint: data.endpoint, expirationTime: null, keys: data.keys}),
    unsubscribe: () => { localStorage.removeItem(KEY); return Promise.resolve(true); }};
  PushManager.prototype.getSubscription = function () {
    return Promise.resolve(wrap(JSON.parse(localStorage.getItem(KEY))));
  };
  PushManager.prototype.subscribe = async function (options) {
    localStorage.setItem("test:asked", JSON.stringify({userVisibleOnly: options.userVisibleOnly,
      key: b64(new Uint8Array(options.applicationServerKey))}));
    // a real P-256 public key, as a browser makes one per subscription
    const pair = await crypto.subtle.generateKey({name: "ECDH", namedCurve: "P-256"}, true,
                                                 ["deriveBits"]);
    const p256dh = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
    const data = {endpoint: "https://fcm.googleapis.com/fcm/send/test-" + Date.now(),
      keys: {p256dh: b64(p256dh), auth: b64(crypto.getRandomValues(new Uint8Array(16)))}};
    localStorage.setItem(KEY, JSON.stringify(data));
    return wrap(data);
  };
})();"""


def _phone(browser: Browser, base: str, email: str) -> Page:
    """A fresh 360x740 touch phone on which `email` logs in, landing on the home page."""
    context = browser.new_context(**SMALL_PHONE)  # type: ignore[arg-type]
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.locator("button[type=submit]").tap()
    page.wait_for_url(f"{base}/")
    return page


def _until(page: Page, script: str, wanted: Any, what: str, seconds: float = 20, *,
           asking: Page | Worker | None = None) -> None:
    """Ask the page (or the worker `asking`) `script` until it answers `wanted`.  (Not
    `wait_for_function`: it does not wait for a promise, and takes any promise, even
    of `false`, as done.)"""
    deadline = time.monotonic() + seconds  # a loaded CI machine is slow to answer
    got = None
    while time.monotonic() < deadline:
        try:
            got = (asking or page).evaluate(script)
        except PlaywrightError:  # the document went away while asked (a navigation)
            got = None
        if got == wanted:
            return
        page.wait_for_timeout(25)
    raise AssertionError(f"{what}: {got!r}, not {wanted!r}")


def _installed(page: Page) -> Page:
    """Wait until the service worker is active and controls the page (clients.claim)."""
    _until(page, ACTIVATED, True, "the service worker is activated")
    page.wait_for_function(CONTROLLED)
    return page


def _registration_id(page: Page, base: str) -> tuple[CDPSession, str]:
    """A DevTools session on the page and the id of the app's service worker registration."""
    cdp = page.context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated",
           lambda event: registrations.extend(event["registrations"]))
    cdp.send("ServiceWorker.enable")
    for _ in range(50):
        found = [r for r in registrations if r["scopeURL"] == f"{base}/" and not r["isDeleted"]]
        if found:
            return cdp, found[-1]["registrationId"]
        page.wait_for_timeout(100)
    raise AssertionError(f"no registration for {base}/ in {registrations}")


def _mark_document(page: Page) -> None:
    page.evaluate("window.markedDocument = true")


def _wait_for_new_document(page: Page) -> None:
    """Wait until the marked document was replaced by a newly loaded one.  (Not
    expect_navigation: when the worker answers a failed navigation preload with the
    offline page, Playwright may report the preload's abort as the navigation's.)"""
    for _ in range(200):
        try:
            if page.evaluate("document.readyState === 'complete' && !window.markedDocument"):
                return
        except PlaywrightError:  # the old document went away while asked
            pass
        page.wait_for_timeout(25)
    raise AssertionError("no new page was loaded")


def _notifications(page: Page) -> list[dict[str, Any]]:
    return page.evaluate(NOTIFICATIONS)  # type: ignore[no-any-return]


def _worker(context: BrowserContext) -> Any:
    return context.service_workers[0] if context.service_workers else \
        context.wait_for_event("serviceworker")


def test_after_login_the_service_worker_is_active_and_holds_the_app_shell(
        app: Flask, session: Session, world: World, phones: Phones) -> None:
    give_profile(session, world.owner_b)
    session.commit()
    with live_server(app) as base:
        page = _installed(_phone(phones.browser, base, world.owner_b.email))
        assert page.evaluate("navigator.serviceWorker.ready.then(r => r.scope)") == f"{base}/"
        names, urls = page.evaluate("""caches.keys().then(names => caches.open(names[0])
            .then(cache => cache.keys()).then(requests => [names, requests.map(r => r.url)]))""")
        assert len(names) == 1 and names[0].startswith("marketplace-shell-")
        stylesheet = page.locator("link[rel=stylesheet]").get_attribute("href")
        assert f"{base}{stylesheet}" in urls and f"{base}/offline" in urls
        assert any("/vendor/socket.io.min.js?v=" in url for url in urls)
        manifest = page.evaluate("fetch(document.querySelector('link[rel=manifest]').href,"
                                 " {credentials: 'include'}).then(r => r.json())")
        assert manifest["display"] == "standalone" and manifest["start_url"] == "/jobs"
        phones.shot(page, "1-home-with-worker")


def test_without_a_network_a_page_shows_the_offline_page_never_a_stale_one(
        app: Flask, session: Session, world: World, phones: Phones) -> None:
    give_profile(session, world.owner_b)
    session.commit()
    with live_server(app) as base:
        page = _installed(_phone(phones.browser, base, world.owner_b.email))
        page.goto(f"{base}/jobs")  # seen online once: it must not come back from a cache
        expect(page.locator("#job-board")).to_be_attached()

        page.context.set_offline(True)  # the phone loses its signal (the worker's fetches too)
        page.goto(f"{base}/jobs")
        assert page.url == f"{base}/jobs"  # the address stays; the offline page answers it
        expect(page.locator("h1")).to_have_text("You are offline")
        assert page.locator("#job-board").count() == 0
        assert page.locator("meta[name=csrf-token]").count() == 0  # nothing personal cached
        header = page.locator("header.top").evaluate("e => getComputedStyle(e).backgroundColor")
        assert header == GREEN  # the app's CSS came from the cache
        retry = page.locator("#offline-retry")
        assert retry.bounding_box()["height"] >= 48  # type: ignore[index]
        phones.shot(page, "1-offline")

        _mark_document(page)  # "Try again" asks for the page again: still offline
        retry.tap()
        _wait_for_new_document(page)
        expect(page.locator("h1")).to_have_text("You are offline")

        _mark_document(page)  # the signal comes back: the page reloads by itself
        page.context.set_offline(False)
        _wait_for_new_document(page)
        expect(page.locator("#job-board")).to_be_attached()
        assert page.url == f"{base}/jobs"
        phones.shot(page, "2-back-online")


def test_a_push_shows_one_notification_and_a_tap_opens_its_job(
        app: Flask, session: Session, world: World, phones: Phones) -> None:
    give_profile(session, world.owner_a)
    give_profile(session, world.owner_b)
    start = utcnow().date() + timedelta(days=7)
    job = post_job(session, world.owner_a, job_draft(
        title="Hedge trimming on Elm St", starts_on=start, ends_on=start + timedelta(days=2)),
        utcnow())
    session.commit()
    with live_server(app) as base:
        page = _installed(_phone(phones.browser, base, world.owner_b.email))
        page.context.grant_permissions(["notifications"], origin=base)
        page.goto(f"{base}/jobs")
        cdp, registration = _registration_id(page, base)
        worker = _worker(page.context)
        worker.evaluate(WATCH)
        url = f"/jobs/{job.id}"
        payload = {"id": 901, "seq": 12, "kind": "job.posted", "title": "New job · Valley",
                   "body": "Hedge trimming on Elm St, Annex", "url": url, "tag": url,
                   "lang": "en"}

        def push(message: dict[str, Any]) -> bool:
            """Deliver a push; once the worker has decided on it, whether it showed it."""
            counts = "[self.handled, self.showing, self.shown]"
            handled, showing, _ = worker.evaluate(counts)
            cdp.send("ServiceWorker.deliverPushMessage", {
                "origin": base, "registrationId": registration, "data": json.dumps(message)})
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                # Decided (the decision to show and the call are one step in the worker),
                # and every notification it began to show is on screen.
                now = worker.evaluate(counts)
                if now[0] > handled and now[1] == now[2]:
                    return bool(now[1] > showing)
                page.wait_for_timeout(25)
            raise AssertionError(f"the worker never handled {message}")

        def on_screen(tag: str) -> list[dict[str, Any]]:
            return [n for n in _notifications(page) if n["tag"] == tag]

        def on_the_phone(ids: list[int]) -> None:
            """Until the phone shows exactly these notifications (as the page reads them)."""
            _until(page, f"() => ({NOTIFICATIONS})().then(all => all.map(n => n.data.id))",
                   ids, "the phone shows")

        def before_the_next_push(ids: list[int]) -> None:
            """Until the phone, then the worker, see these notifications: the next push
            is decided on what the worker reads, and Chromium's store can answer the
            worker later than the page."""
            on_the_phone(ids)
            _until(page, "self.readShown()", ids, "the worker sees", asking=worker)

        assert push(payload)
        before_the_next_push([901])
        [first] = on_screen(url)
        assert (first["title"], first["body"]) == (payload["title"], payload["body"])
        assert first["data"] == {"url": url, "id": 901, "seq": 12}

        # The same push again (the server resends after a crash): dropped, not shown
        # again (it would ring again, as renotify asks): the notification keeps its time.
        assert not push(payload)
        assert [n["timestamp"] for n in on_screen(url)] == [first["timestamp"]]

        # A newer notice about the same job replaces the older one (same tag) ...
        assert push({**payload, "id": 903, "seq": 14, "kind": "job.taken",
                     "body": "Taken by Cedar"})
        before_the_next_push([903])
        # ... and an older one arriving late (push services keep no order) does not.
        assert not push({**payload, "id": 902, "seq": 13})
        assert [(n["data"]["id"], n["body"]) for n in on_screen(url)] == [(903, "Taken by Cedar")]
        phones.shot(page, "1-board-when-pushed")

        # A tap on it: the app's open window goes to the job, the notification closes.
        with page.expect_navigation(url=f"{base}{url}"):
            worker.evaluate(CLICK, [url])
        expect(page.locator("h1")).to_contain_text("Hedge trimming on Elm St")
        on_the_phone([])
        phones.shot(page, "2-job-opened-from-notification")

        # A payload pointing off the site opens the app's start page instead.
        assert push({**payload, "id": 904, "seq": 15, "url": "https://evil.example/x",
                     "tag": "evil"})
        on_the_phone([904])
        assert on_screen("evil")[0]["data"]["url"] == "/"
        with page.expect_navigation(url=f"{base}/"):
            worker.evaluate(CLICK, ["evil"])


def test_the_account_page_turns_notifications_on_and_off_for_this_device(
        app: Flask, session: Session, world: World, phones: Phones, database_url: str) -> None:
    give_profile(session, world.owner_b)
    session.commit()
    with live_server(app) as base:
        page = _installed(_phone(phones.browser, base, world.owner_b.email))
        page.context.add_init_script(FAKE_PUSH_SERVICE)
        page.context.grant_permissions(["notifications"], origin=base)
        page.goto(f"{base}/account")
        box = page.locator("#push-device")
        expect(box.locator("[data-push-state=off]")).to_be_visible()
        turn_on = box.locator("[data-push-action=on]")
        assert turn_on.bounding_box()["height"] >= 48  # type: ignore[index]
        turn_on.tap()
        expect(box.locator("[data-push-state=on]")).to_be_visible()
        asked = json.loads(page.evaluate("localStorage.getItem('test:asked')"))
        key = page.locator("meta[name=vapid-public-key]").get_attribute("content")
        assert asked == {"userVisibleOnly": True, "key": key} and key
        endpoint = json.loads(page.evaluate("localStorage.getItem('test:subscription')"))[
            "endpoint"]
        with own_session(database_url) as check:
            row = check.exec(select(PushSubscription).where(
                PushSubscription.endpoint == endpoint)).one()
            assert row.user_id == world.owner_b.id and row.removed_at is None
        phones.shot(page, "1-on")

        page.reload()  # the state is read back from the browser, not remembered by the page
        expect(box.locator("[data-push-state=on]")).to_be_visible()
        box.locator("[data-push-action=off]").tap()
        expect(box.locator("[data-push-state=off]")).to_be_visible()
        with own_session(database_url) as check:
            row = check.exec(select(PushSubscription).where(
                PushSubscription.endpoint == endpoint)).one()
            assert row.removed_at is not None
        phones.shot(page, "2-off")


def _board_visit(page: Page, base: str, count: int) -> None:
    """Open the board and wait until push.js has counted this visit (its decisions to
    stay hidden are all made by then; showing waits for the subscription check)."""
    page.goto(f"{base}/jobs")
    page.wait_for_function(
        "n => localStorage.getItem('marketplace:board-visits:' + document.body.dataset.userId)"
        " === String(n)", arg=count)


def test_the_board_offers_notifications_from_the_second_visit_until_not_now(
        app: Flask, session: Session, world: World, phones: Phones, database_url: str) -> None:
    give_profile(session, world.owner_b)
    session.commit()
    with live_server(app) as base:
        page = _installed(_phone(phones.browser, base, world.owner_b.email))
        page.context.add_init_script(FAKE_PUSH_SERVICE)
        prompt = page.locator("#push-prompt")
        _board_visit(page, base, 1)
        expect(prompt).to_be_hidden()  # never on the first visit

        _board_visit(page, base, 2)
        expect(prompt).to_be_visible()
        for button in prompt.locator("button:visible").all():
            box = button.bounding_box()
            assert box is not None and box["height"] >= 48 and box["width"] >= 48
        phones.shot(page, "1-prompt")
        prompt.locator("[data-push-action=later]").tap()
        expect(prompt).to_be_hidden()
        snooze_key = f"marketplace:push-snoozed-until:{world.owner_b.id}"
        left = page.evaluate(f"Number(localStorage.getItem('{snooze_key}')) - Date.now()")
        assert 13.9 * 86400_000 < left <= 14 * 86400_000
        _board_visit(page, base, 3)
        expect(prompt).to_be_hidden()  # "Not now" holds

        # Fourteen days on it asks again; the person taps "Turn on", then "Allow".
        page.evaluate(f"localStorage.setItem('{snooze_key}', String(Date.now() - 1))")
        _board_visit(page, base, 4)
        expect(prompt).to_be_visible()
        page.context.grant_permissions(["notifications"], origin=base)
        prompt.locator("[data-push-action=on]").tap()
        expect(prompt.locator("[data-push-state=on]")).to_be_visible()
        phones.shot(page, "2-turned-on")
        expect(prompt).to_be_hidden(timeout=10_000)
        with own_session(database_url) as check:
            rows = check.exec(select(PushSubscription).where(
                PushSubscription.user_id == world.owner_b.id)).all()
            assert len(rows) == 1 and rows[0].removed_at is None

        _board_visit(page, base, 5)
        expect(prompt).to_be_hidden()  # never once the permission is granted
