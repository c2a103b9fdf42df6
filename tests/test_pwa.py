"""The installable app's server side: manifest, service worker script, offline page, and
the tags every page needs (the browser side is tests/browser/test_pwa.py)."""

from __future__ import annotations

import io
import json
import re

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from flask_babel import force_locale, gettext
from PIL import Image

from marketplace import assets
from tests.conftest import World, login

FINGERPRINTED = r"/(?:static|vendor)/[^\"?]+\?v=[0-9a-f]{16}"


def _switch_language(app: Flask, client: FlaskClient, code: str) -> None:
    with app.test_request_context():
        path = url_for("auth.switch_language", code=code)
    assert client.get(path).status_code == 302


def _cache_name(script: str) -> str:
    found = re.search(r'var CACHE = "(marketplace-shell-[0-9a-f]{16})";', script)
    assert found, script[:500]
    return found.group(1)


def _shell(script: str) -> list[str]:
    found = re.search(r"var SHELL = (\[.*?\]);", script)
    assert found
    return json.loads(found.group(1))  # type: ignore[no-any-return]


def test_the_manifest_has_what_chrome_needs_to_install_the_app(client: FlaskClient) -> None:
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response.mimetype == "application/manifest+json"
    manifest = json.loads(response.get_data(as_text=True))
    assert manifest["name"] and manifest["short_name"]
    assert len(manifest["short_name"]) <= 12  # what fits under a home-screen icon
    assert manifest["start_url"] == "/jobs" and manifest["scope"] == "/"
    assert manifest["display"] == "standalone"
    assert manifest["theme_color"] == "#1f6f43" and manifest["lang"] == "en"
    sizes = set()
    for icon in manifest["icons"]:
        assert re.fullmatch(FINGERPRINTED, icon["src"]), icon["src"]
        image_response = client.get(icon["src"])
        assert image_response.status_code == 200
        image = Image.open(io.BytesIO(image_response.get_data()))
        width, height = (int(n) for n in icon["sizes"].split("x"))
        assert (image.format, image.size) == ("PNG", (width, height))
        assert icon["type"] == "image/png"
        sizes.add((width, icon["purpose"]))
    assert {(192, "any"), (512, "any"), (512, "maskable")} <= sizes


def test_the_maskable_icon_fills_its_square(client: FlaskClient) -> None:
    """Android crops maskable icons to a circle or squircle: no transparent corners."""
    manifest = client.get("/manifest.webmanifest").get_json(force=True)
    [maskable] = [i for i in manifest["icons"] if i["purpose"] == "maskable"]
    image = Image.open(io.BytesIO(client.get(maskable["src"]).get_data())).convert("RGBA")
    alpha = image.getchannel("A")
    assert alpha.getextrema() == (255, 255)


@pytest.mark.parametrize("code", ["es", "fr"])
def test_the_manifest_speaks_the_chosen_language(app: Flask, client: FlaskClient,
                                                 code: str) -> None:
    _switch_language(app, client, code)
    manifest = client.get("/manifest.webmanifest").get_json(force=True)
    with app.test_request_context(), force_locale(code):
        expected = gettext("Coopetition marketplace"), gettext("Marketplace")
    assert expected != ("Coopetition marketplace", "Marketplace")  # the catalog has them
    assert (manifest["name"], manifest["short_name"]) == expected
    assert manifest["lang"] == code


def test_the_manifest_is_revalidated_cheaply(client: FlaskClient) -> None:
    first = client.get("/manifest.webmanifest")
    assert first.headers["Cache-Control"] == "no-cache"
    again = client.get("/manifest.webmanifest", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


def test_the_service_worker_lists_the_current_shell(client: FlaskClient) -> None:
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["Service-Worker-Allowed"] == "/"
    shell = _shell(response.get_data(as_text=True))
    assert "/offline" in shell
    names = {url.split("?")[0] for url in shell}
    assert {"/static/css/app.css", "/static/js/live.js", "/static/js/push.js",
            "/vendor/socket.io.min.js", "/static/icons/icon-192.png",
            "/static/icons/badge-96.png"} <= names
    for url in shell:
        if url != "/offline":
            assert re.fullmatch(FINGERPRINTED, url), url
        fetched = client.get(url)
        assert fetched.status_code == 200, url
        if url != "/offline":  # the hash is the file's current one: cached for a year
            assert fetched.headers["Cache-Control"] == assets.IMMUTABLE, url


def test_the_cache_name_changes_when_an_asset_changes(client: FlaskClient,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    before = client.get("/sw.js").get_data(as_text=True)
    real = assets.fingerprint

    def css_changed(path):  # type: ignore[no-untyped-def]
        return "0123456789abcdef" if path.name == "app.css" else real(path)

    monkeypatch.setattr(assets, "fingerprint", css_changed)
    after = client.get("/sw.js").get_data(as_text=True)
    assert "/static/css/app.css?v=0123456789abcdef" in _shell(after)
    assert _cache_name(after) != _cache_name(before)
    monkeypatch.undo()
    assert _cache_name(client.get("/sw.js").get_data(as_text=True)) == _cache_name(before)


def test_the_cache_name_changes_with_the_language(app: Flask, client: FlaskClient) -> None:
    """The precached offline page is in the viewer's language: switching language must
    reinstall the worker, which fetches the page again."""
    english = _cache_name(client.get("/sw.js").get_data(as_text=True))
    _switch_language(app, client, "es")
    assert _cache_name(client.get("/sw.js").get_data(as_text=True)) != english


def test_the_offline_page_works_for_anyone_and_holds_nothing_personal(
        client: FlaskClient, world: World) -> None:
    anonymous = client.get("/offline")
    assert anonymous.status_code == 200
    html = anonymous.get_data(as_text=True)
    assert 'id="offline-retry"' in html and "<h1" in html
    assert re.search(r'<link rel="stylesheet" href="/static/css/app\.css\?v=[0-9a-f]{16}"', html)
    login(client, world.owner_a)
    personal = client.get("/offline").get_data(as_text=True)
    # The same page for everyone in a language (the cluster's en_CA here): safe to keep.
    assert personal.replace('lang="en-CA"', 'lang="en"') == html
    assert world.owner_a.email not in personal and "csrf" not in personal


def test_the_offline_page_is_in_the_viewer_s_language(app: Flask, client: FlaskClient) -> None:
    _switch_language(app, client, "es")
    response = client.get("/offline")
    assert '<html lang="es">' in response.get_data(as_text=True)
    assert response.headers["Content-Language"] == "es"


def test_pages_link_the_app_and_logged_in_pages_load_push(client: FlaskClient,
                                                          world: World) -> None:
    anonymous = client.get("/login").get_data(as_text=True)
    assert '<link rel="manifest" href="/manifest.webmanifest"' in anonymous
    assert '<meta name="theme-color" content="#1f6f43">' in anonymous
    assert 'rel="apple-touch-icon" href="/static/icons/apple-touch-icon.png"' in anonymous
    assert "js/push.js" not in anonymous and 'name="csrf-token"' not in anonymous
    for icon in ("apple-touch-icon.png", "favicon-32.png"):
        image = Image.open(io.BytesIO(client.get(f"/static/icons/{icon}").get_data()))
        assert image.size == ((180, 180) if icon.startswith("apple") else (32, 32))

    login(client, world.owner_a)
    page = client.get("/jobs").get_data(as_text=True)
    assert re.search(r'<script src="/static/js/push\.js\?v=[0-9a-f]{16}" defer>', page)
    assert f'data-user-id="{world.owner_a.id}"' in page
    assert re.search(r'<meta name="csrf-token" content="[^"]+">', page)
    assert re.search(r'<meta name="vapid-public-key" content="[A-Za-z0-9_-]*">', page)
    assert re.search(r'<div id="push-prompt"[^>]* hidden>', page)


def test_the_account_page_has_the_device_section(client: FlaskClient, world: World) -> None:
    login(client, world.owner_a)
    page = client.get("/account").get_data(as_text=True)
    assert 'id="push-device"' in page
    assert page.count("data-push-state=") >= 8 and 'data-push-action="on"' in page
