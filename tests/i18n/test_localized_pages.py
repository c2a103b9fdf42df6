"""Every page in every language, for every role; regional formats; DST edges;
and notifications rendered in the recipient's language."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session

from marketplace.clusters.service import update_preferences
from marketplace.db import utcnow
from marketplace.equipment import booking, listings, rotation
from marketplace.i18n import NonexistentLocalTime, local_to_utc
from marketplace.jobs import service
from marketplace.money import format_money, parse_minor
from tests.conftest import World, login
from tests.equipment.conftest import anytime_draft as equipment_draft
from tests.jobs.conftest import give_profile, job_draft

CATALOGS = Path(__file__).resolve().parents[2] / "marketplace" / "translations"
TAG = re.compile(r"<[^>]+>")


def _english_only_phrases(lang: str) -> set[str]:
    """Catalog msgids long enough to be unmistakable, whose translation differs."""
    with open(CATALOGS / lang / "LC_MESSAGES" / "messages.po", "rb") as handle:
        catalog = read_po(handle, locale=lang)
    phrases = set()
    for message in catalog:
        msgid = message.id if isinstance(message.id, str) else None
        if msgid and len(msgid) >= 14 and "%" not in msgid and message.string != msgid:
            phrases.add(msgid)
    return phrases


def _visible_text(page: str) -> str:
    page = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S)
    return html.unescape(TAG.sub(" ", page))


@pytest.fixture
def job_world(session: Session, world: World) -> tuple[World, int]:
    give_profile(session, world.owner_a)
    give_profile(session, world.owner_b)
    now = utcnow()
    job = service.post_job(session, world.owner_a, job_draft(
        starts_on=now.date(), ends_on=now.date() + timedelta(days=2)), now)
    assert job.id is not None
    return world, job.id


@pytest.fixture
def machines(session: Session, world: World) -> dict[str, int]:
    """A machine A owns (booked by B, needing approval) and one A and B co-own, rotating."""
    now = utcnow()
    own = listings.list_machine(session, world.owner_a, equipment_draft(needs_approval=True),
                                now)
    shared = listings.record_co_owned(session, world.coordinator, equipment_draft(
        name="Shared skid steer", kind="skid_steer"),
        {world.member_a_id: 6000, world.member_b_id: 4000}, now)
    rotation.create_plan(session, world.coordinator, shared.id, "week",  # type: ignore[arg-type]
                         now.date(), now)
    starts = now.replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    made = booking.book(session, world.owner_b, own.id, starts,  # type: ignore[arg-type]
                        starts + timedelta(hours=2), now)
    return {"own": own.id, "shared": shared.id, "booking": made.id}  # type: ignore[dict-item]


@pytest.mark.parametrize("lang", ["en", "es", "fr", "de"])
@pytest.mark.parametrize("role", ["coordinator", "owner_a", "crew_a", "owner_b"])
def test_every_page_speaks_the_viewers_language(client: FlaskClient, session: Session,
                                                job_world: tuple[World, int],
                                                machines: dict[str, int], lang: str,
                                                role: str) -> None:
    world, job_id = job_world
    this_month = utcnow().astimezone(ZoneInfo(world.cluster.timezone)).strftime("%Y-%m")
    user = getattr(world, role)
    update_preferences(session, user, lang, None, None)
    login(client, user)
    pages = ["/", "/members", f"/members/{world.member_a_id}", "/agreement", "/account",
             "/notifications", f"/jobs/{job_id}", "/equipment",
             f"/equipment/{machines['own']}", f"/equipment/{machines['shared']}",
             f"/equipment/{machines['shared']}/rotation",
             f"/equipment/bookings/{machines['booking']}", "/ledger",
             f"/ledger/{this_month}", "/dashboard", "/dashboard?member=cluster"]
    pages += (["/invites", "/agreement/proposals/new", "/cluster/settings", "/jobs/cluster",
               "/equipment/co-owned/new", f"/equipment/{machines['shared']}/edit",
               f"/ledger/{this_month}?member={world.member_b_id}",
               f"/ledger/{this_month}/print?member={world.member_b_id}"]
              if role == "coordinator" else ["/jobs", "/jobs/mine", "/jobs/new",
                                             "/equipment/bookings",
                                             f"/ledger/{this_month}/print"])
    pages += [f"/equipment/{machines['own']}/edit", "/equipment/new"] \
        if role == "owner_a" else []
    english = _english_only_phrases(lang) if lang != "en" else set()
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, (path, lang, role)
        page = response.get_data(as_text=True)
        assert f'<html lang="{lang}' in page, (path, lang)
        text = _visible_text(page)
        leftovers = sorted(p for p in english if p in text)
        assert leftovers == [], (path, lang, leftovers[:5])


@pytest.mark.parametrize("minor, currency, locale, shown", [
    (123456, "USD", "en_US", "$1,234.56"),
    (123456, "CAD", "fr_CA", "1\u00a0234,56\u00a0$"),
    (123456, "EUR", "de_DE", "1.234,56\u00a0€"),
    (123456, "MXN", "es_MX", "$1,234.56"),
])
def test_money_in_the_viewers_locale(minor: int, currency: str, locale: str,
                                     shown: str) -> None:
    assert format_money(minor, currency, locale) == shown
    assert parse_minor(shown.replace("$", "").replace("€", "").strip(), currency,
                       locale) == minor


def test_daylight_saving_edges_in_toronto() -> None:
    # Autumn: 01:30 happens twice on 2026-11-01; the first one (EDT) is meant.
    assert local_to_utc(datetime(2026, 11, 1, 1, 30), "America/Toronto") == datetime(
        2026, 11, 1, 5, 30, tzinfo=UTC)
    # Spring: 02:30 does not exist on 2026-03-08.
    with pytest.raises(NonexistentLocalTime):
        local_to_utc(datetime(2026, 3, 8, 2, 30), "America/Toronto")
    assert local_to_utc(datetime(2026, 3, 8, 3, 30), "America/Toronto") == datetime(
        2026, 3, 8, 7, 30, tzinfo=UTC)


def test_relative_time_and_plurals_in_spanish(app: Flask) -> None:
    from flask_babel import force_locale, ngettext

    from marketplace.i18n import relative

    with app.test_request_context(), force_locale("es"):
        assert relative(utcnow() + timedelta(hours=2, minutes=1)) == "dentro de 2 horas"
        assert ngettext("%(num)d bid", "%(num)d bids", 1) != ngettext(
            "%(num)d bid", "%(num)d bids", 3)


def test_browser_region_is_kept_for_formatting(app: Flask) -> None:
    from flask_babel import get_locale

    from marketplace.i18n import money

    with app.test_request_context(headers={"Accept-Language": "fr-CA,fr;q=0.8,en;q=0.5"}):
        assert str(get_locale()) == "fr_CA"
        assert money(123456, "CAD") == "1\u00a0234,56\u00a0$"
    with app.test_request_context(headers={"Accept-Language": "de-AT,de;q=0.9"}):
        assert str(get_locale()) == "de"
    with app.test_request_context("/?lang=es", headers={"Accept-Language": "fr-CA"}):
        assert str(get_locale()) == "es"


def test_units_and_first_weekday_follow_region(app: Flask, session: Session,
                                               world: World) -> None:
    from flask_babel import force_locale
    from flask_login import login_user

    from marketplace.i18n import first_weekday, format_area, format_distance

    with app.test_request_context():
        login_user(world.owner_a)
        assert format_distance(10) == "10 km" and format_area(25_000) == "2.5 ha"
        update_preferences(session, world.owner_a, None, None, "imperial")
        assert format_distance(16.09344) == "10 mi"
        assert format_area(4046.8564224 * 2) == "2 ac" and format_area(100) == "1,076 sq ft"
        with force_locale("en_US"):
            assert first_weekday() == 6  # Sunday
        with force_locale("de_DE"):
            assert first_weekday() == 0  # Monday


def test_ineligibility_reason_names_trades_in_the_viewers_language(
        client: FlaskClient, session: Session, job_world: tuple[World, int]) -> None:
    world, job_id = job_world
    give_profile(session, world.owner_b, trades=("fencing",))
    update_preferences(session, world.owner_b, "fr", None, None)
    login(client, world.owner_b)
    page = _visible_text(client.get(f"/jobs/{job_id}").get_data(as_text=True))
    assert "Tonte" in page and "Mowing" not in page
