"""Static and npm files: fingerprinted URLs cached a year, gzip for text, pages never gzipped."""

from __future__ import annotations

import gzip
import re

from flask.testing import FlaskClient

from marketplace.assets import IMMUTABLE, REVALIDATE, VENDOR_FILES
from marketplace.config import PROJECT_ROOT
from tests.conftest import World, login

GZIP = {"Accept-Encoding": "gzip, deflate"}


def _asset_urls(client: FlaskClient) -> dict[str, str]:
    html = client.get("/jobs").get_data(as_text=True)
    pattern = r'(?:href|src)="(/(?:static|vendor)/([^"?]+)\?v=[0-9a-f]{16})"'
    return {m.group(2): m.group(1) for m in re.finditer(pattern, html)}


def test_pages_link_assets_by_content_hash(client: FlaskClient, world: World) -> None:
    login(client, world.owner_a)
    urls = _asset_urls(client)
    assert {"css/app.css", "js/live.js", "socket.io.min.js"} <= set(urls)


def test_a_current_url_is_cached_for_a_year_and_gzipped(client: FlaskClient,
                                                       world: World) -> None:
    login(client, world.owner_a)
    for name, url in _asset_urls(client).items():
        response = client.get(url, headers=GZIP)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == IMMUTABLE
        assert response.headers["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in response.headers["Vary"]
        assert response.headers["ETag"].startswith('W/"')
        source = (VENDOR_FILES.get(name) or PROJECT_ROOT / "static") / name
        body = gzip.decompress(response.get_data())
        assert body == source.read_bytes()
        assert int(response.headers["Content-Length"]) == len(response.get_data()) < len(body)


def test_without_gzip_the_file_comes_as_is(client: FlaskClient) -> None:
    response = client.get("/vendor/socket.io.min.js")
    assert response.status_code == 200
    assert "Content-Encoding" not in response.headers
    assert response.get_data() == (VENDOR_FILES["socket.io.min.js"]
                                   / "socket.io.min.js").read_bytes()


def test_an_unversioned_or_stale_url_is_revalidated(client: FlaskClient) -> None:
    for url in ("/static/css/app.css", "/static/css/app.css?v=0000000000000000"):
        first = client.get(url, headers=GZIP)
        assert first.headers["Cache-Control"] == REVALIDATE
        again = client.get(url, headers={**GZIP, "If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304
        assert again.headers["Cache-Control"] == REVALIDATE


def test_unknown_vendor_files_are_not_served(client: FlaskClient) -> None:
    assert client.get("/vendor/socket.io.js.map").status_code == 404
    assert client.get("/vendor/../package.json").status_code == 404


def test_pages_are_not_compressed(client: FlaskClient, world: World) -> None:
    """HTML holds CSRF tokens beside typed text: compressing it opens BREACH."""
    login(client, world.owner_a)
    response = client.get("/jobs", headers=GZIP)
    assert response.status_code == 200
    assert "Content-Encoding" not in response.headers
