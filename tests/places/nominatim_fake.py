"""A Nominatim server at the wire, on a local port: answers GET /search with the JSON
shape Nominatim gives (format=json, addressdetails=1) for the addresses it was told,
an empty list for anything else, and records every request it got."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class FakeNominatim:
    url: str = ""
    #: folded query -> (lat, lng, display name, address details)
    known: dict[str, tuple[float, float, str, dict[str, str]]] = field(default_factory=dict)
    requests: list[dict[str, list[str]]] = field(default_factory=list)
    delay: float = 0.0

    def answer(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        text = " ".join(query.get("q", [""])[0].lower().split())
        if text not in self.known:
            return []
        lat, lng, name, address = self.known[text]
        return [{"place_id": 1, "licence": "Data © OpenStreetMap contributors",
                 "osm_type": "node", "osm_id": 1, "lat": str(lat), "lon": str(lng),
                 "class": "place", "type": "house", "importance": 0.5,
                 "display_name": name, "address": address,
                 "boundingbox": [str(lat - 0.001), str(lat + 0.001),
                                 str(lng - 0.001), str(lng + 0.001)]}]


@contextmanager
def nominatim() -> Iterator[FakeNominatim]:
    fake = FakeNominatim()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            fake.requests.append({"path": [parts.path], **query})
            time.sleep(fake.delay)
            body = json.dumps(fake.answer(query) if parts.path == "/search" else []).encode()
            self.send_response(200 if parts.path == "/search" else 404)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (the timeout test)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
