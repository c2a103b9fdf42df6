"""Booking from the week (issue #18): tap a free time, see the price, confirm.

- A tap on a free piece opens the booking step prefilled with the first slot there of
  the machine's shortest length, and the price this booker pays is on it before any
  button: the rate that applies and, for a co-owner, that its own share is not charged.
- A person's form books only the price it showed: changed times (or a price that moved)
  get the new price to confirm, and nothing is written until then.
- Open time that has passed is not "free" and offers no tap.
- Lengths read in days, hours and minutes in the viewer's language.
- The price shown is what the ledger then charges, to the cent (property over rates,
  lengths and shares; and end to end on a co-owned machine).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session, select

from marketplace.barrier import Audience
from marketplace.clusters.service import update_preferences
from marketplace.db import utcnow
from marketplace.equipment import calendar, listings, quotes
from marketplace.equipment.models import Booking, Equipment
from marketplace.equipment.pricing import Rate, booking_fee, price_of
from marketplace.ledger.models import LedgerEntry
from marketplace.money import allocate
from tests.conftest import World, login
from tests.equipment.conftest import anytime_draft, co_draft

ZONE = "America/Toronto"  # the cluster's, and so the test users', time zone


@pytest.fixture
def grinder(session: Session, world: World) -> Equipment:
    """A's stump grinder: any hour, 30-minute steps, at least 90 minutes, 40.00/h."""
    return listings.list_machine(session, world.owner_a, anytime_draft(
        min_minutes=90, max_minutes=3 * 24 * 60, buffer_minutes=0), utcnow())


@pytest.fixture
def trailer(session: Session, world: World) -> Equipment:
    """A trailer A (60 %) and B (40 %) co-own, 45.67/h in whole hours."""
    return listings.record_co_owned(session, world.coordinator, co_draft(),
                                    {world.member_a_id: 6_000, world.member_b_id: 4_000},
                                    utcnow())


def _local(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M")


def _tomorrow(hour: int) -> datetime:
    day = (utcnow().astimezone(ZoneInfo(ZONE)) + timedelta(days=1)).date()
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo(ZONE))


def _signature(page: str) -> str:
    found = re.search(r'name="quoted" value="([^"]*)"', page)
    assert found is not None, "the booking form carries the price it shows"
    return found.group(1)


def test_a_tap_on_a_free_time_opens_the_booking_step_with_its_price(
        client: FlaskClient, session: Session, world: World, grinder: Equipment) -> None:
    login(client, world.owner_b)
    week = client.get(f"/equipment/{grinder.id}").get_data(as_text=True)
    taps = re.findall(r'href="(/equipment/\d+/book\?start=[^"]+)"', week)
    assert taps, "every free piece of the week is a way to book it"
    tapped = _tomorrow(9)
    page = client.get(f"/equipment/{grinder.id}/book",
                      query_string={"start": tapped.isoformat()})
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert f'value="{_local(tapped)}"' in text  # from the tapped time
    assert f'value="{_local(tapped + timedelta(minutes=90))}"' in text  # shortest length
    assert "You pay" in text and "$60.00" in text  # 90 min at 40.00/h, before any button
    assert "at the hour rate" in text
    assert "Confirm the booking" in text
    assert session.exec(select(Booking)).all() == []  # showing the price books nothing


def test_a_tap_inside_a_step_starts_at_the_next_step_and_never_in_the_past(
        session: Session, world: World, grinder: Equipment) -> None:
    now = datetime(2026, 12, 7, 14, 7, 33, tzinfo=UTC)
    starts, ends = quotes.first_slot(grinder, now - timedelta(hours=3), now)
    assert starts == datetime(2026, 12, 7, 14, 30, tzinfo=UTC)  # 09:07:33 EST -> 09:30
    assert ends - starts == timedelta(minutes=90)


def test_confirming_books_exactly_the_price_shown(client: FlaskClient, session: Session,
                                                   world: World, grinder: Equipment) -> None:
    login(client, world.owner_b)
    tapped = _tomorrow(9)
    page = client.get(f"/equipment/{grinder.id}/book",
                      query_string={"start": tapped.isoformat()}).get_data(as_text=True)
    form = {"starts_at": _local(tapped), "ends_at": _local(tapped + timedelta(minutes=90)),
            "quoted": _signature(page)}
    booked = client.post(f"/equipment/{grinder.id}/book", data=form)
    assert booked.status_code == 302
    [made] = session.exec(select(Booking)).all()
    assert made.price_minor == 60_00


def test_changed_times_show_the_new_price_to_confirm_and_book_nothing(
        client: FlaskClient, session: Session, world: World, grinder: Equipment) -> None:
    login(client, world.owner_b)
    tapped = _tomorrow(9)
    page = client.get(f"/equipment/{grinder.id}/book",
                      query_string={"start": tapped.isoformat()}).get_data(as_text=True)
    longer = {"starts_at": _local(tapped), "ends_at": _local(tapped + timedelta(hours=3)),
              "quoted": _signature(page)}  # the 90-minute price, for three hours
    response = client.post(f"/equipment/{grinder.id}/book", data=longer)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Check the price for these times, then confirm." in text
    assert "$120.00" in text
    assert session.exec(select(Booking)).all() == []
    # Without script, the detail page's form carries no price yet: the same step.
    blank = {**longer, "quoted": ""}
    assert client.post(f"/equipment/{grinder.id}/book", data=blank).status_code == 200
    assert session.exec(select(Booking)).all() == []
    longer["quoted"] = _signature(text)
    assert client.post(f"/equipment/{grinder.id}/book", data=longer).status_code == 302
    session.rollback()  # read after the app's commit, not in the snapshot read above
    assert [b.price_minor for b in session.exec(select(Booking))] == [120_00]


def test_a_refused_slot_says_why_on_the_booking_step(client: FlaskClient, session: Session,
                                                     world: World, grinder: Equipment) -> None:
    login(client, world.owner_b)
    tapped = _tomorrow(9)
    short = {"starts_at": _local(tapped), "ends_at": _local(tapped + timedelta(minutes=30)),
             "quoted": ""}
    response = client.post(f"/equipment/{grinder.id}/book", data=short)
    assert response.status_code == 422
    assert "at least 90" in response.get_data(as_text=True)
    assert session.exec(select(Booking)).all() == []


def test_the_live_price_fragment(client: FlaskClient, world: World,
                                 grinder: Equipment) -> None:
    login(client, world.owner_b)
    tapped = _tomorrow(9)
    ok = client.get(f"/equipment/{grinder.id}/quote", query_string={
        "starts_at": _local(tapped), "ends_at": _local(tapped + timedelta(hours=2))})
    assert ok.status_code == 200
    assert "$80.00" in ok.get_data(as_text=True)
    assert 'data-signature="' in ok.get_data(as_text=True)
    bad = client.get(f"/equipment/{grinder.id}/quote", query_string={
        "starts_at": _local(tapped), "ends_at": _local(tapped - timedelta(hours=2))})
    assert bad.status_code == 422
    assert "The end must be after the start." in bad.get_data(as_text=True)


def test_a_co_owner_sees_its_own_share_is_not_charged_and_the_ledger_agrees(
        client: FlaskClient, session: Session, world: World, trailer: Equipment) -> None:
    login(client, world.owner_b)  # B owns 40 %: it pays A's 60 % only
    tapped = _tomorrow(9)
    page = client.get(f"/equipment/{trailer.id}/book",
                      query_string={"start": tapped.isoformat()}).get_data(as_text=True)
    assert "$27.40" in page  # 60 % of 45.67
    assert "$18.27" in page and "is not charged" in page
    form = {"starts_at": _local(tapped), "ends_at": _local(tapped + timedelta(hours=1)),
            "quoted": _signature(page)}
    assert client.post(f"/equipment/{trailer.id}/book", data=form).status_code == 302
    owed = [e.amount_minor for e in session.exec(select(LedgerEntry))
            if e.payer_member_id == world.member_b_id]
    assert sum(owed) == 27_40


def test_time_already_gone_is_past_not_free(session: Session, world: World,
                                            grinder: Equipment) -> None:
    now = datetime.now(UTC)
    today = now.astimezone(ZoneInfo(ZONE)).date()
    [day] = calendar.week(session, grinder, today, world.member_b_id,
                          Audience.OTHER_MEMBER, days=1, now=now)
    kinds = [(s.kind, s.ends_at <= now) for s in day.segments]
    assert all(kind != "free" for kind, before in kinds if before)
    assert any(kind == "past" for kind, _before in kinds) or now.astimezone(
        ZoneInfo(ZONE)).hour == 0


def test_lengths_read_in_days_and_hours_in_the_viewers_language(
        client: FlaskClient, session: Session, world: World, grinder: Equipment) -> None:
    login(client, world.owner_b)
    page = client.get(f"/equipment/{grinder.id}").get_data(as_text=True)
    assert "From 1 hour and 30 minutes to 3 days, in steps of 30 minutes." in page
    update_preferences(session, world.owner_b, "es", None, None)
    page = client.get(f"/equipment/{grinder.id}").get_data(as_text=True)
    assert "3 días" in page and "1 hora y 30 minutos" in page


# -- the price shown is the price charged, to the cent --------------------------------------

@given(minutes=st.integers(1, 14 * 24 * 60), hour=st.integers(0, 100_000),
       day=st.integers(0, 1_000_000))
def test_the_rate_named_is_the_one_charged(minutes: int, hour: int, day: int) -> None:
    rate, price = price_of(minutes, hour, day)
    assert price == booking_fee(minutes, hour, day)
    assert (rate is Rate.FREE) == (hour == 0 and day == 0)


@given(price=st.integers(0, 10_000_000),
       shares=st.lists(st.integers(1, 9_999), min_size=1, max_size=6).map(
           lambda raw: [*raw[:-1], 10_000 - sum(raw[:-1])] if sum(raw[:-1]) < 10_000
           else [10_000]),
       pick=st.integers(0, 5))
def test_the_booker_pays_the_others_parts_exactly(price: int, shares: list[int],
                                                  pick: int) -> None:
    owners = {member: share for member, share in enumerate(shares, start=10)}
    booker = 10 + pick % len(shares)
    mine = quotes.own_share(price, owners, booker)
    others = sum(part for member, part in zip(sorted(owners), allocate(price, shares),
                                              strict=True) if member != booker) \
        if price else 0
    assert mine + others == price
    assert quotes.own_share(price, owners, 999) == 0  # not an owner: pays it all
