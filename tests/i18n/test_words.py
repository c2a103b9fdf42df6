"""Words people use: a bare language takes the cluster's country (Canadian English
writes 2026-12-16), months by name, recent times as "3 min ago"."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale
from sqlmodel import Session

from marketplace.clusters.service import update_preferences
from marketplace.i18n import ago, day, month_name, regional, status_label
from tests.conftest import World, login

CANADA = SimpleNamespace(default_locale="en_CA", currency="CAD")
MEXICO_BY_CURRENCY = SimpleNamespace(default_locale="es", currency="MXN")
EUROPE = SimpleNamespace(default_locale="de", currency="EUR")


def test_a_bare_language_takes_the_clusters_country() -> None:
    assert regional("en", CANADA) == "en_CA" and regional("fr", CANADA) == "fr_CA"
    assert regional("es", CANADA) == "es"  # no Canadian Spanish offered: plain Spanish
    assert regional("es", MEXICO_BY_CURRENCY) == "es_MX"
    assert regional("de", EUROPE) == "de"
    assert regional("en_US", CANADA) == "en_US"  # a chosen country is kept


def test_canadian_english_writes_iso_dates(client: FlaskClient, session: Session,
                                           world: World) -> None:
    update_preferences(session, world.owner_b, "en", None, None)
    login(client, world.owner_b)
    page = client.get("/").get_data(as_text=True)
    assert '<html lang="en-CA"' in page


def test_words_in_each_language(app: Flask) -> None:
    now = datetime(2026, 12, 1, 17, 11, 29, tzinfo=UTC)
    with app.test_request_context("/"):
        with force_locale("en_CA"):
            assert day(date(2026, 12, 16), "short") == "2026-12-16"
            assert month_name("2026-11") == "November 2026"
            assert ago(now - timedelta(minutes=3), now) == "3 mins ago"
            assert ago(now - timedelta(seconds=5), now) == "just now"
            assert "+00:00" not in ago(now - timedelta(days=2), now)
            assert status_label("awarded") == "Taken"
            assert status_label("submitted", "bid") == "Bid sent"
        with force_locale("fr"):
            assert month_name("2026-11") == "novembre 2026"
        with force_locale("es"):
            assert month_name("2026-11") == "noviembre de 2026"
        assert month_name("not a month") == "not a month"
