"""A free piece of the machine's week is a tap only when the booking step it opens
can book it.

Late in the day the rest before closing is free, but the machine's shortest
booking no longer fits in it; offered as a tap, it opened a booking step that
refused its own proposal (422, a console error on the phone).  CI caught it
only when it happened to run after 17:00 in Toronto, so here the clock is
pinned on both sides of that moment.
"""

from __future__ import annotations

import html
import re
from datetime import date, datetime

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session

from marketplace.equipment import listings
from marketplace.equipment.views import bookings as booking_views
from marketplace.equipment.views import machines as machine_views
from tests.conftest import World, login
from tests.equipment.conftest import at, draft

WEDNESDAY = date(2027, 1, 13)  # open 07:00-18:00; the shortest booking is one hour
assert WEDNESDAY.weekday() == 2
_TAP = re.compile(r'href="(/equipment/\d+/book\?start=[^"]+)"')


def _taps_at(client: FlaskClient, session: Session, world: World,
             monkeypatch: pytest.MonkeyPatch, now: datetime) -> list[str]:
    """The week's taps as the booker sees them at `now` (the clock pinned there)."""
    machine = listings.list_machine(session, world.owner_a, draft(), now)
    for module in (machine_views, booking_views):
        monkeypatch.setattr(module, "utcnow", lambda: now)
    login(client, world.owner_b)
    page = client.get(f"/equipment/{machine.id}")
    assert page.status_code == 200
    return [html.unescape(link) for link in _TAP.findall(page.get_data(as_text=True))]


def _today(taps: list[str]) -> list[str]:
    return [tap for tap in taps if f"start={WEDNESDAY.isoformat()}" in tap]


@pytest.mark.parametrize(("hour", "minute", "today_offered"), [
    (16, 12, True),    # next step 16:30, one hour ends 17:30: fits before 18:00
    (17, 0, True),     # 17:00 to 18:00 is exactly the shortest booking
    (17, 2, False),    # next step 17:30: one hour would end 18:30, after closing
    (17, 45, False),
])
def test_every_tap_opens_a_booking_step_that_can_book_it(
        client: FlaskClient, session: Session, world: World, monkeypatch: pytest.MonkeyPatch,
        hour: int, minute: int, today_offered: bool) -> None:
    now = at(WEDNESDAY, hour, minute)
    taps = _taps_at(client, session, world, monkeypatch, now)
    assert bool(_today(taps)) is today_offered, taps
    assert [tap for tap in taps if "start=2027-01-14" in tap], "tomorrow is free all day"
    for tap in taps:
        step = client.get(tap)
        assert step.status_code == 200, (tap, step.status_code)
