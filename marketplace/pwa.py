"""The installable app: the web manifest, the service worker and the offline page.

Why these are views rather than static files: the manifest speaks the
viewer's language, and the service worker must list the *current*
fingerprinted asset URLs (marketplace/assets.py).  Its cache name is a hash of
that list and of the offline page it precaches, so a deploy that changes any
of them, or a person switching language, changes the worker's bytes: the
browser installs the new worker, which fetches the new shell and drops the
old cache.
"""

from __future__ import annotations

import hashlib
import json

from flask import Blueprint, Response, current_app, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _

bp = Blueprint("pwa", __name__)

THEME_COLOR = "#1f6f43"  # --green in static/css/app.css: the header bar
BACKGROUND_COLOR = "#f4f6f3"  # --bg: the page behind the cards (the splash screen)
START_URL = "/jobs"  # members land on the board; coordinators are sent on to theirs
# What the worker precaches: everything a page, the offline page and a notification
# load.  The 512 px icons are only read by the browser when it installs the app.
SHELL_ASSETS = (
    ("static", "css/app.css"),
    ("static", "js/live.js"),
    ("static", "js/push.js"),
    ("vendor", "socket.io.min.js"),
    ("static", "icons/icon-192.png"),
    ("static", "icons/badge-96.png"),
    ("static", "icons/favicon-32.png"),
)
ICONS = (  # file, size, purpose
    ("icons/icon-192.png", 192, "any"),
    ("icons/icon-512.png", 512, "any"),
    ("icons/icon-maskable-512.png", 512, "maskable"),
)


def _language() -> str:
    """The viewer's locale as a BCP 47 tag ("fr-CA"), as manifests and HTML want it."""
    return str(get_locale() or "en").replace("_", "-")


def _revalidated(response: Response) -> Response:
    """Always asked again (cheaply: an ETag makes the answer a 304 when nothing changed)."""
    response.headers["Cache-Control"] = "no-cache"
    response.vary.update(("Cookie", "Accept-Language"))  # the language comes from either
    response.add_etag()
    response.make_conditional(request)  # turns it into a 304 in place when the ETag matches
    return response


@bp.route("/manifest.webmanifest")
def manifest() -> ResponseReturnValue:
    data = {
        "id": "/",  # the app's identity, kept if the start page ever changes
        "name": _("Coopetition marketplace"),
        "short_name": _("Marketplace"),
        "description": _("Share overflow jobs and equipment with the firms of your cluster."),
        "lang": _language(),
        "dir": "ltr",
        "start_url": START_URL,
        "scope": "/",
        "display": "standalone",
        "theme_color": THEME_COLOR,
        "background_color": BACKGROUND_COLOR,
        "categories": ["business", "productivity"],
        "icons": [{"src": url_for("static", filename=name), "sizes": f"{size}x{size}",
                   "type": "image/png", "purpose": purpose} for name, size, purpose in ICONS],
    }
    body = json.dumps(data, ensure_ascii=False, indent=1)
    return _revalidated(current_app.response_class(body, mimetype="application/manifest+json"))


@bp.route("/sw.js")
def service_worker() -> ResponseReturnValue:
    shell = [url_for(endpoint, filename=name) for endpoint, name in SHELL_ASSETS]
    offline_url = url_for("pwa.offline")
    # The offline page is rendered exactly as the worker will fetch it (same cookies,
    # so the same language): when its text changes, so does the cache name.
    offline_page = render_template("pwa/offline.html")
    version = hashlib.sha256("\n".join([*shell, offline_page]).encode()).hexdigest()[:16]
    body = render_template(
        "pwa/sw.js", cache_name=f"marketplace-shell-{version}", shell=[*shell, offline_url],
        offline_url=offline_url, icon=url_for("static", filename="icons/icon-192.png"),
        badge=url_for("static", filename="icons/badge-96.png"),
        token_page=url_for("clusters.account"),
        # Translated here, not in the template: babel.cfg extracts only *.html templates.
        fallback_title=_("Coopetition marketplace"),
        fallback_body=_("Something new is waiting for you in the marketplace."),
    )
    response = current_app.response_class(body, mimetype="text/javascript")
    response.headers["Service-Worker-Allowed"] = "/"
    return _revalidated(response)


@bp.route("/offline")
def offline() -> ResponseReturnValue:
    """What the worker shows when a page cannot be fetched.  Stand-alone, not base.html:
    it is cached on the phone, so it must hold nothing personal (no menu, no CSRF
    token, no unread count) and load nothing that needs the network."""
    response = current_app.response_class(render_template("pwa/offline.html"),
                                          mimetype="text/html")
    response.headers["Content-Language"] = _language()
    return _revalidated(response)


@bp.route("/favicon.ico")
def favicon() -> ResponseReturnValue:
    """The tab icon for whatever asks at the old fixed address: pages without a
    <link rel=icon> (a JSON answer, a calendar feed opened in a tab) and tools.  The
    32 px PNG, which every browser accepts there; a week in caches."""
    return current_app.send_static_file("icons/favicon-32.png"), 200, {
        "Cache-Control": "public, max-age=604800"}
