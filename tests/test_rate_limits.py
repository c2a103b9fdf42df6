"""Rate limits: password guessing and runaway scripts get a 429 that says what to do,
in the user's language; other people and other actions are unaffected."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from marketplace import create_app
from tests.conftest import CHEAP_HASHING, PASSWORD, SECRET, World


@pytest.fixture
def limited_app(database_url: str, tmp_path: Path, world: World) -> Iterator[Flask]:
    """Created after the world (and its app): the limiter is one object per process, and
    the app created last configures it."""
    app = create_app({
        "TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": SECRET,
        "WTF_CSRF_ENABLED": False, "REDIS_URL": None, "PUBLIC_URL": "http://localhost",
        "UPLOAD_DIR": str(tmp_path / "uploads"), "RATELIMIT_ENABLED": True,
        "RATELIMIT_LOGIN": "3 per minute", "RATELIMIT_CLAIM": "2 per minute",
        **CHEAP_HASHING})
    yield app
    app.extensions["engine"].dispose()


def test_password_guessing_is_slowed_down(limited_app: Flask, world: World) -> None:
    client = limited_app.test_client()
    for _ in range(3):
        wrong = client.post("/login", data={"email": world.owner_a.email, "password": "nope"})
        assert wrong.status_code == 401
    blocked = client.post("/login", data={"email": world.owner_a.email, "password": PASSWORD})
    assert blocked.status_code == 429
    assert "Too many attempts. Wait a minute and try again." in blocked.get_data(as_text=True)
    french = client.post("/login", data={"email": "x@y.test", "password": "z"},
                         headers={"Accept-Language": "fr"})
    assert french.status_code == 429 and "Trop de tentatives" in french.get_data(as_text=True)
    assert client.get("/login").status_code == 200  # reading the page is not limited


def test_claims_are_limited_per_person_not_per_address(limited_app: Flask,
                                                       world: World) -> None:
    first, second = limited_app.test_client(), limited_app.test_client()
    for client, user in ((first, world.owner_a), (second, world.owner_b)):
        client.post("/login", data={"email": user.email, "password": PASSWORD})
    json = {"Accept": "application/json"}
    codes = [first.post("/jobs/999999/claim", headers=json).status_code for _ in range(3)]
    assert codes == [404, 404, 429]
    limited = first.post("/jobs/999999/claim", headers=json)
    assert limited.get_json()["error"]["code"] == "http_429"
    assert second.post("/jobs/999999/claim", headers=json).status_code == 404  # own budget

