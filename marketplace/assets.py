"""Our CSS/JS and the npm libraries as a phone on a weak signal wants them.

Why: crews open pages on a phone in the field, where a round trip costs
hundreds of milliseconds and a megabit is a lot.  Two things make the second
and every later page cheap, and the first one lighter (Lighthouse's mobile
audit flagged both):

* **Fingerprinted URLs, cached for a year.**  `url_for('static', ...)` and
  `url_for('vendor', ...)` add `v=<hash of the file's bytes>`.  A request
  carrying the file's current hash is answered with `Cache-Control: public,
  max-age=31536000, immutable`: the browser never asks again, and a new
  deploy changes the hash, hence the URL.  Without `v`, or with a stale one,
  the answer says `no-cache`, so the browser revalidates (ETag) and a stale
  page never keeps old code.
* **gzip for text files** (CSS, JavaScript, JSON, SVG) to browsers that
  accept it: socket.io's client shrinks from 47 to about 15 KB.  Each file
  version is compressed once and kept in memory.  The ETag becomes weak
  (same bytes once decoded), which `If-None-Match` compares weakly, so
  revalidation still ends in a 304.

Pages themselves are not compressed: HTML carries CSRF tokens next to text
users typed, the mix a compression side channel (BREACH) exploits over HTTPS.
"""

from __future__ import annotations

import gzip
import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, request, send_from_directory
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join

from marketplace.config import PROJECT_ROOT

# Front-end libraries come from npm; these are the files pages may load.
VENDOR_FILES = {
    "socket.io.min.js": PROJECT_ROOT / "node_modules/socket.io-client/dist",
}
ASSET_ENDPOINTS = ("static", "vendor")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
_COMPRESSIBLE = {"text/css", "text/javascript", "application/javascript",
                 "application/json", "image/svg+xml"}
_MAX_COMPRESSED_BYTES = 2 * 1024 * 1024  # bigger files are not ours to hold in memory


def init_assets(app: Flask) -> None:
    """Serve the npm files at /vendor/, fingerprint asset URLs, cache and gzip assets."""
    app.add_url_rule("/vendor/<path:filename>", "vendor", _vendor_file)
    app.url_defaults(_add_fingerprint)
    app.after_request(_cache_and_compress)


def _vendor_file(filename: str) -> ResponseReturnValue:
    folder = VENDOR_FILES.get(filename)
    if folder is None:
        raise NotFound()
    return send_from_directory(folder, filename)


def asset_path(endpoint: str, filename: str) -> Path | None:
    """The file behind an asset URL, or None when there is none."""
    if endpoint == "static":
        joined = safe_join(str(current_app.static_folder), filename)
        path = Path(joined) if joined else None
    else:
        folder = VENDOR_FILES.get(filename)
        path = folder / filename if folder else None
    return path if path is not None and path.is_file() else None


def _version(path: Path) -> tuple[str, int, int]:
    """What identifies one version of a file for the caches below."""
    stat = path.stat()
    return str(path), stat.st_mtime_ns, stat.st_size


@lru_cache(maxsize=256)
def _digest(path: str, _mtime_ns: int, _size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@lru_cache(maxsize=64)
def _gzipped(path: str, _mtime_ns: int, _size: int) -> bytes:
    return gzip.compress(Path(path).read_bytes(), compresslevel=9, mtime=0)


def fingerprint(path: Path) -> str:
    """The hash a URL of this file carries (changes whenever its bytes do)."""
    return _digest(*_version(path))


def _add_fingerprint(endpoint: str, values: dict[str, Any]) -> None:
    if endpoint in ASSET_ENDPOINTS and "filename" in values and "v" not in values:
        path = asset_path(endpoint, values["filename"])
        if path is not None:
            values["v"] = fingerprint(path)


def _cache_and_compress(response: Response) -> Response:
    if request.endpoint not in ASSET_ENDPOINTS or response.status_code not in (200, 304):
        return response
    path = asset_path(request.endpoint, (request.view_args or {}).get("filename", ""))
    if path is None:
        return response
    current = request.args.get("v") == fingerprint(path)
    response.headers["Cache-Control"] = IMMUTABLE if current else REVALIDATE
    response.headers.pop("Expires", None)
    if response.mimetype not in _COMPRESSIBLE:
        return response
    response.vary.add("Accept-Encoding")
    if (request.accept_encodings["gzip"] <= 0 or "Content-Encoding" in response.headers
            or path.stat().st_size > _MAX_COMPRESSED_BYTES):
        return response
    etag, _weak = response.get_etag()
    if etag:
        response.set_etag(etag, weak=True)
    if response.status_code == 200:
        if hasattr(response.response, "close"):  # the file send_file opened
            response.response.close()
        response.direct_passthrough = False
        response.set_data(_gzipped(*_version(path)))
        response.headers["Content-Encoding"] = "gzip"
        response.headers.pop("Accept-Ranges", None)
    return response
