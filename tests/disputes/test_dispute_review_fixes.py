"""The adversarial review's findings on disputes, each pinned by a test:

1. a panellist (a rival) reads neither the parties' messages nor their photos, nor the
   disputed entries beyond their total -- in the service, on the page and over the API;
2. a damage fee written late is disputable for the agreement's window from when it was
   written, not from the booking's end;
3. a message's one-time key is the author's: another reader's same key stores its own;
4. a business that left drops off the panel (and its majority), and its people are told
   nothing more of the dispute -- except a party's people, of the outcome."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlmodel import Session, select

from marketplace.clusters.models import Agreement, Member, User
from marketplace.disputes import service as disputes
from marketplace.disputes.models import DisputeMessage, DisputePanelist, MemberDispute
from marketplace.equipment import booking
from marketplace.errors import Conflict, NotFound
from marketplace.realtime.models import Notification
from tests.api.conftest import bearer
from tests.conftest import login
from tests.disputes.conftest import DAMAGE, TUESDAY, closed_at, damaged_booking
from tests.equipment.test_photo_metadata import jpeg_with_gps
from tests.ledger.conftest import Ledger, at

DAMAGE_FEE = "damage_fee"
WHEN = closed_at() + timedelta(days=2)


def _panel_dispute(session: Session, lw: Ledger) -> MemberDispute:  # noqa: F811
    """The agreement names a panel; C disputes the damage fee of its closed booking."""
    for agreement in session.exec(select(Agreement)).all():
        agreement.dispute_resolver = "panel"
        session.add(agreement)
    session.commit()
    made = damaged_booking(session, lw)
    assert made.id is not None
    dispute = disputes.open_dispute(session, lw.owner_c, "booking", made.id, DAMAGE_FEE,
                                    "Cracked before", closed_at() + timedelta(days=1))
    assert dispute.id is not None
    return dispute


def _told(session: Session, user: User, text: str) -> int:
    session.close()
    return len(session.exec(select(Notification.id).where(
        Notification.user_id == user.id,
        Notification.message.contains(text))).all())  # type: ignore[attr-defined]


def _unstamped(page: bytes) -> bytes:
    """A page's own content (not the frame's moment, address or asset versions)."""
    main = re.search(rb"<main.*</main>", page, re.S)
    assert main is not None
    return main.group(0)


# -- 1. the panel reads what it decides on, not the parties' messages -------------------


@pytest.fixture()
def _clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from marketplace.api import disputes as api_disputes
    from marketplace.disputes import views

    monkeypatch.setattr(views, "utcnow", lambda: WHEN)
    monkeypatch.setattr(api_disputes, "utcnow", lambda: WHEN)
    yield


@pytest.mark.usefixtures("_clock")
def test_a_panellist_reads_no_message_no_photo_and_no_entry_of_the_dispute(
        app: Flask, session: Session, lw: Ledger) -> None:
    dispute = _panel_dispute(session, lw)
    assert dispute.id is not None and dispute.resolver == "panel"
    assert set(session.exec(select(DisputePanelist.member_id))) == {lw.d}
    booker = app.test_client()
    login(booker, lw.owner_c)
    posted = booker.post(f"/disputes/{dispute.id}/messages", data={
        "body": "Secret check-out talk", "request_key": "k1",
        "photo": (io.BytesIO(jpeg_with_gps()), "light.jpg")},
        content_type="multipart/form-data")
    assert posted.status_code == 302, posted.get_data(as_text=True)
    session.close()  # read what the app committed, not this snapshot
    message = session.exec(select(DisputeMessage)).one()
    # The panel is not told of the message; the other party is.
    assert _told(session, lw.owner_d, "new message") == 0
    assert _told(session, lw.world.owner_a, "new message") == 1
    # The service: no messages, no entries, no posting, no photo (as a missing one).
    view = disputes.dispute_view(session, lw.owner_d, dispute, WHEN)
    assert view.messages == () and view.entries == () and not view.may_post
    assert view.may_decide
    with pytest.raises(NotFound):
        disputes.photo_of(session, lw.owner_d, message.id)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        disputes.post_message(session, lw.owner_d, dispute.id, "peek", None, Path("/nonexistent"),
                              None, WHEN)
    # The page.
    panellist = app.test_client()
    login(panellist, lw.owner_d)
    page = panellist.get(f"/disputes/{dispute.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Cracked before" in html and "100.01" in html  # the reason and the total
    assert "Secret check-out talk" not in html and 'id="messages"' not in html
    assert f"/disputes/photos/{message.id}" not in html
    assert "60.01" not in html and "40.00" not in html  # each owner's part of the fee
    for url in (f"/disputes/photos/{message.id}", f"/disputes/photos/{message.id}?size=full"):
        missing = panellist.get("/disputes/photos/999999")
        refused = panellist.get(url)
        assert refused.status_code == missing.status_code == 404
        assert _unstamped(refused.data) == _unstamped(missing.data)
    assert panellist.post(f"/disputes/{dispute.id}/messages",
                          data={"body": "peek"}).status_code == 404
    # The API.
    body = panellist.get(f"/api/v1/disputes/{dispute.id}",
                         headers=bearer(session, lw.owner_d)).get_json()
    assert body["messages"] == [] and body["entries"] == []
    assert body["disputed_minor"] == DAMAGE and body["reason"] == "Cracked before"
    assert "Secret" not in str(body) and "6001" not in str(body)
    said = panellist.post(f"/api/v1/disputes/{dispute.id}/messages",
                          headers=bearer(session, lw.owner_d), json={"body": "peek"})
    assert said.status_code == 404
    # The parties and the coordinator still read everything.
    for reader in (lw.owner_c, lw.world.owner_a, lw.coordinator):
        shown = disputes.dispute_view(session, reader, dispute, WHEN)
        assert [m.body for m in shown.messages] == ["Secret check-out talk"]
        assert sorted(e.amount_minor for e in shown.entries) == [4_000, 6_001]
        assert disputes.photo_of(session, reader, message.id)  # type: ignore[arg-type]


# -- 2. a damage fee written late ---------------------------------------------------------


def test_a_damage_fee_written_late_is_disputable_from_when_it_was_written(
        session: Session, lw: Ledger) -> None:
    made = booking.book(session, lw.owner_c, lw.trailer.id, at(TUESDAY, 9),  # type: ignore[arg-type]
                        at(TUESDAY, 11), at(TUESDAY, 9) - timedelta(days=1))
    assert made.id is not None
    booking.check_out(session, lw.owner_c, made.id, None, "", None, at(TUESDAY, 9))
    booking.return_machine(session, lw.owner_c, made.id, None, "", at(TUESDAY, 11))
    late = at(TUESDAY, 11) + timedelta(days=20)
    booking.close(session, lw.coordinator, made.id, DAMAGE, "Cracked tail light", late)
    subject = disputes.subject_of(session, lw.owner_c, "booking", made.id)
    assert disputes.window_end(session, subject, DAMAGE_FEE) == late + timedelta(days=14)
    opened = disputes.open_dispute(session, lw.owner_c, "booking", made.id, DAMAGE_FEE,
                                   "Charged three weeks later", late + timedelta(days=1))
    assert opened.disputed_minor == DAMAGE
    with pytest.raises(Conflict) as refused:  # the booking fee's window ran from the end
        disputes.open_dispute(session, lw.owner_c, "booking", made.id, "booking", "x",
                              late + timedelta(days=1))
    assert refused.value.code == "window_closed"


# -- 3. the one-time key is the author's ---------------------------------------------------


def test_another_readers_same_key_posts_its_own_message(session: Session, lw: Ledger,
                                                        tmp_path: Path) -> None:
    made = damaged_booking(session, lw)
    assert made.id is not None
    dispute = disputes.open_dispute(session, lw.owner_c, "booking", made.id, DAMAGE_FEE,
                                    "Cracked before", closed_at() + timedelta(days=1))
    assert dispute.id is not None
    mine = disputes.post_message(session, lw.owner_c, dispute.id, "C's words", None, tmp_path,
                                 "same-key", WHEN)
    theirs = disputes.post_message(session, lw.world.owner_a, dispute.id, "A's words", None,
                                   tmp_path, "same-key", WHEN)
    assert theirs.id != mine.id
    assert (theirs.author_id, theirs.body) == (lw.world.owner_a.id, "A's words")
    again = disputes.post_message(session, lw.world.owner_a, dispute.id, "A's words", None,
                                  tmp_path, "same-key", WHEN)
    assert again.id == theirs.id  # the author's own double tap is still stored once
    session.expire_all()
    assert sorted(m.body for m in session.exec(select(DisputeMessage))) == [
        "A's words", "C's words"]


# -- 4. a business that left ---------------------------------------------------------------


def _leave(session: Session, member_id: int, when: datetime) -> None:
    member = session.get(Member, member_id)
    assert member is not None
    member.exit_effective_at = when
    session.add(member)
    session.commit()


def test_a_business_that_left_drops_off_the_panel_and_is_told_only_its_outcome(
        session: Session, lw: Ledger) -> None:
    from tests.jobs.conftest import add_partner

    others = {u.member_id: u for u in (
        lw.owner_d, *(add_partner(session, lw.world, name, f"{name.lower()}@left.test")
                      for name in ("Epsilon", "Zeta", "Eta")))}
    dispute = _panel_dispute(session, lw)
    assert dispute.id is not None
    panel = sorted(session.exec(select(DisputePanelist.member_id).where(
        DisputePanelist.dispute_id == dispute.id)))
    first, second, third = (others[m] for m in panel)
    disputes.decide(session, first, dispute.id, "cancel", None, None, "Old damage", WHEN)
    assert first.member_id is not None and lw.world.owner_b.member_id is not None
    _leave(session, first.member_id, WHEN + timedelta(hours=1))  # the first voter left
    _leave(session, lw.world.owner_b.member_id, WHEN + timedelta(hours=1))  # a party left
    later = WHEN + timedelta(hours=2)
    assert not disputes.may_decide(session, first, dispute, later)
    told_before = {u.id: _told(session, u, "cast its decision")
                   for u in (first, lw.world.owner_b, lw.world.owner_a)}
    # Its vote no longer counts: the panel is now two, and one agreeing is not more than half.
    assert disputes.decide(session, second, dispute.id, "cancel", None, None, "Worn",
                           later).status == "open"
    view = disputes.dispute_view(session, lw.coordinator, dispute, later)
    assert (len(view.panel), view.panel_votes) == (2, 1)  # "1 of 2 have cast a decision"
    # The leavers are told nothing more; a party still a member is.
    assert _told(session, first, "cast its decision") == told_before[first.id]
    assert _told(session, lw.world.owner_b, "cast its decision") \
        == told_before[lw.world.owner_b.id]
    assert _told(session, lw.world.owner_a, "cast its decision") \
        == told_before[lw.world.owner_a.id] + 1
    decided = disputes.decide(session, third, dispute.id, "cancel", None, None, "Worn too",
                              later)
    assert decided.status == "decided" and decided.decided_minor == 0
    assert _told(session, first, "is decided:") == 0  # the former panellist: nothing
    assert _told(session, lw.world.owner_b, "is decided:") == 1  # a former party: its outcome
    assert _told(session, lw.world.owner_a, "is decided:") == 1


def test_a_panel_whose_members_all_left_passes_to_the_coordinator(
        session: Session, lw: Ledger) -> None:
    dispute = _panel_dispute(session, lw)
    assert dispute.id is not None and dispute.resolver == "panel"
    _leave(session, lw.d, WHEN)  # D, the whole panel, left
    assert not disputes.may_decide(session, lw.owner_d, dispute, WHEN)
    decided = disputes.decide(session, lw.coordinator, dispute.id, "uphold", None, None,
                              "Nobody is left on the panel", WHEN)
    assert decided.status == "decided"
    assert session.exec(select(MemberDispute.status)).one() == "decided"
