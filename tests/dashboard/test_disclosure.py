"""Cluster totals a rival cannot take apart (issue #16).

A member looking at the whole cluster sees a sum of other members' money or
ratings only for a month that is over, and only when it combines at least k
other members and k contracts (bookings, ratings, entries); the figure of a
closed month never moves again, so two reads never subtract into one rival's
price.  The coordinator and a member's own figures are as before.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from itertools import combinations

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session, col, select

from marketplace.clusters import agreements
from marketplace.clusters.governance import service as governance
from marketplace.clusters.models import AgreementProposal, User
from marketplace.dashboard import views
from marketplace.equipment import booking
from marketplace.ledger import settlement
from tests.conftest import login, terms
from tests.dashboard.conftest import (
    APRIL_BOOKING_FEE,
    APRIL_HANDOFFS,
    UNTAKEN_VALUE,
    Market,
    award,
    bid,
    bid_window,
    finish,
    handoff,
    utc,
)
from tests.dashboard.test_pages import tables
from tests.equipment.conftest import at

RANGE = "first=2026-04&last=2026-07"
#: The cells that sum other members' money or ratings, by chart and CSV header.
PROTECTED = {
    "value": ("Kept in the cluster (CAD)", "Not taken by anyone (CAD)"),
    "fees": ("Fees earned (CAD)",),
    "revenue": ("Received (CAD)", "Paid (CAD)", "Net (CAD)"),
    "rating": ("Average rating", "Ratings saying on time"),
}
TOO_FEW = "too few to show"

Cells = dict[tuple[str, str, str], str]  # (chart, month, header) -> the CSV's text


def _clock(monkeypatch: pytest.MonkeyPatch, when: datetime) -> None:
    monkeypatch.setattr(views, "utcnow", lambda: when)


def _csv(client: FlaskClient, chart: str, member: str = "cluster") -> list[list[str]]:
    response = client.get(f"/dashboard/{chart}.csv?{RANGE}&member={member}")
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def read(client: FlaskClient, monkeypatch: pytest.MonkeyPatch, when: datetime,
         member: str = "cluster") -> tuple[Cells, Cells, str]:
    """Every protected cell of the four CSVs and of the page's tables, read at `when`."""
    _clock(monkeypatch, when)
    from_csv: Cells = {}
    headers = {}
    for chart, protected in PROTECTED.items():
        header, *rows = _csv(client, chart, member)
        headers[chart] = header
        for row in rows:
            for name, text in zip(header, row, strict=True):
                if name in protected:
                    from_csv[(chart, row[0], name)] = text
    page = client.get(f"/dashboard?{RANGE}&member={member}").get_data(as_text=True)
    from_page: Cells = {}
    for chart, rows in tables(page).items():
        if chart in PROTECTED:
            for row in rows:
                for name, text in zip(headers[chart], row, strict=True):
                    if name in PROTECTED[chart]:
                        from_page[(chart, row[0], name)] = text
    return from_csv, from_page, page


def _minor(text: str) -> int:
    return round(float(text) * 100)


def _assert_no_difference_reveals(reads: list[Cells], prices: set[int],
                                  scores: set[int]) -> None:
    """No difference of any two reads of a cell is one contract, fee or rating; a
    published cell never changes at all."""
    for (n, earlier), (m, later) in combinations(enumerate(reads), 2):
        for key, before in earlier.items():
            after = later.get(key, "")
            if not before or not after:
                continue
            if key[2].endswith("(CAD)"):
                assert abs(_minor(after) - _minor(before)) not in prices, (n, m, key)
            elif key[2] == "Average rating":
                assert abs(float(after) - float(before)) not in scores, (n, m, key)
            assert after == before, (n, m, key, before, after)


def test_a_rival_reading_before_and_after_awards_learns_no_price(
        client: FlaskClient, session: Session, market: Market,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """B reads the cluster's totals (four CSVs and the page) around two bid-window
    awards it lost: one won and awarded in May, one posted in May and awarded in June;
    a booking and a rating land in between.  Every difference of two reads is zero."""
    world = market.world
    a, b, c, d, e = (market.owner(n) for n in "abcde")
    coordinator = world.coordinator
    login(client, b)
    reads: list[Cells] = []
    pages: list[str] = []

    def look(when: datetime) -> Cells:
        from_csv, from_page, page = read(client, monkeypatch, when)
        assert from_page == from_csv  # the table holds what the CSV holds
        reads.append(from_csv)
        pages.append(page)
        return from_csv

    look(utc(5, 1))
    first = bid_window(session, a, 200_000, utc(5, 4), utc(5, 6), utc(5, 10).date(),
                       title="Regrade the school field")
    bid(session, b, first, 180_000, utc(5, 4, 14))
    winning = bid(session, e, first, 150_000, utc(5, 4, 15))
    look(utc(5, 5))
    award(session, a, first, winning, utc(5, 6, 13))
    look(utc(5, 6, 15))  # same month, just after the award
    settlement.draft_for(session, coordinator, "2026-04", utc(5, 8))
    settlement.approve(session, coordinator, "2026-04", {}, utc(5, 8))
    handoff(session, a, c, 50_000, utc(5, 10))
    handoff(session, a, d, 60_000, utc(5, 12))
    booking.book(session, d, market.machines["c"], at(utc(5, 12).date(), 9),
                 at(utc(5, 12).date(), 13), utc(5, 11))
    finish(session, a, e, first, utc(5, 14), 2, False)
    look(utc(5, 16, 15))
    second = bid_window(session, c, 90_000, utc(5, 20), utc(6, 1, 16), utc(6, 10).date(),
                        title="Dig the koi pond")
    late_winner = bid(session, d, second, 80_000, utc(5, 21))
    bid(session, b, second, 85_000, utc(5, 21, 13))
    look(utc(5, 25))
    may_closed = look(utc(6, 1, 15))  # May is over, the second window not yet closed
    award(session, c, second, late_winner, utc(6, 2))
    look(utc(6, 2, 13))  # across the month boundary: the June award
    handoff(session, e, c, 70_000, utc(6, 5))
    handoff(session, a, e, 40_000, utc(6, 6))
    july = look(utc(7, 2))

    prices = {150_000, 80_000, 50_000, 60_000, 70_000, 40_000, UNTAKEN_VALUE,
              APRIL_BOOKING_FEE, 200_000, 90_000, *(v for _p, _w, v, _s, _o in APRIL_HANDOFFS)}
    scores = {2, 3, 4, 5}
    _assert_no_difference_reveals(reads, prices, scores)
    # Published totals are sums of at least three other members' contracts.
    april_kept = sum(v for _p, _w, v, _s, _o in APRIL_HANDOFFS)
    assert reads[0][("value", "2026-04", "Kept in the cluster (CAD)")] == f"{april_kept / 100:.2f}"
    fees = 3 * APRIL_BOOKING_FEE
    assert reads[0][("fees", "2026-04", "Fees earned (CAD)")] == f"{fees / 100:.2f}"
    assert reads[0][("rating", "2026-04", "Average rating")] == "4.25"
    assert reads[0][("rating", "2026-04", "Ratings saying on time")] == "75.0"
    # May's contracts are E's award and A's two hand-offs, whose values B saw on the
    # board: 2 600.00 less those would be E's bid, so May stays withheld once over; so
    # does June, with the one award (D's) besides two hand-offs.
    assert may_closed[("value", "2026-05", "Kept in the cluster (CAD)")] == ""
    assert july[("value", "2026-05", "Kept in the cluster (CAD)")] == ""
    assert july[("value", "2026-06", "Kept in the cluster (CAD)")] == ""
    # A month still running shows nothing; one booking or one rating never shows.
    for cells in reads[:5]:
        assert all(text == "" for key, text in cells.items() if key[1] == "2026-05")
    assert july[("fees", "2026-05", "Fees earned (CAD)")] == ""
    assert july[("rating", "2026-05", "Average rating")] == ""
    # The settled April revenue appears once approved, and is the coordinator's figure.
    # What members paid stays withheld: besides the hand-offs' fees (known from the
    # board and the agreement) it is A's three bookings -- one member's spending.
    assert reads[2][("revenue", "2026-04", "Received (CAD)")] == ""
    assert reads[3][("revenue", "2026-04", "Received (CAD)")] != ""
    assert july[("revenue", "2026-04", "Paid (CAD)")] == ""
    assert july[("revenue", "2026-04", "Net (CAD)")] == ""
    login(client, coordinator)
    _clock(monkeypatch, utc(7, 2))
    revenue = {row[0]: row for row in _csv(client, "revenue")}
    assert revenue["2026-04"][2] == july[("revenue", "2026-04", "Received (CAD)")]
    # Nowhere, page or CSV, does a single price appear.
    for page in pages:
        assert TOO_FEW in page
        for price in (150_000, 80_000):
            assert f'data-value="{price / 100:.2f}"' not in page


def test_too_few_other_members_read_too_few_to_show_with_the_reason(
        client: FlaskClient, session: Session, market: Market,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """C's April ratings and fees combine only two other members once C's own are left
    aside (ratings of D and A; fees of D's and E's machines): too few for k = 3.  With
    k = 2 they are shown, and equal the sums of the month stored on the first read."""
    login(client, market.owner_c)
    cells, _page_cells, page = read(client, monkeypatch, utc(6, 1))
    rating = ("rating", "2026-04", "Average rating")
    fees = ("fees", "2026-04", "Fees earned (CAD)")
    assert cells[rating] == cells[fees] == ""
    april = re.search(r'<tr><th scope="row" data-value="2026-04">.*?</tr>',
                      page.split('id="table-rating"', 1)[1], re.S)
    assert april is not None
    assert TOO_FEW in april.group(0) and "fewer than 3 other members" in april.group(0)
    assert "month is not over" in page  # June is still running
    assert "at least 3 other members" in page  # the rule, in the charts' hints
    # The coordinator lowers k to 2 (a new version of the agreement).
    agreements.publish_agreement(session, market.world.coordinator,
                                 terms(aggregate_min_group=2), utc(6, 1))
    cells, _page_cells, page = read(client, monkeypatch, utc(6, 1))
    assert cells[rating] == "4.25"
    assert cells[fees] == f"{3 * APRIL_BOOKING_FEE / 100:.2f}"
    assert "at least 2 other members" in page


def test_b_sees_its_april_totals_and_c_does_not(client: FlaskClient, market: Market,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    login(client, market.world.owner_b)
    cells, _p, _page = read(client, monkeypatch, utc(5, 2))
    assert cells[("value", "2026-04", "Kept in the cluster (CAD)")] == "4600.00"
    assert cells[("fees", "2026-04", "Fees earned (CAD)")] == "480.00"
    # One job nobody took, D's: its value is on its card for every member.
    assert cells[("value", "2026-04", "Not taken by anyone (CAD)")] == "770.00"
    login(client, market.owner_c)
    cells, _p, _page = read(client, monkeypatch, utc(5, 2))
    # April's contracts are hand-offs, their values on the board: shown to C as well.
    assert cells[("value", "2026-04", "Kept in the cluster (CAD)")] == "4600.00"
    assert cells[("fees", "2026-04", "Fees earned (CAD)")] == ""  # C owns one of them


def test_the_coordinator_still_sees_everything_exact(client: FlaskClient, session: Session,
                                                     market: Market,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    world = market.world
    first = bid_window(session, world.owner_a, 200_000, utc(5, 4), utc(5, 6),
                       utc(5, 10).date())
    winning = bid(session, market.owner_e, first, 150_000, utc(5, 4, 15))
    award(session, world.owner_a, first, winning, utc(5, 6, 13))
    login(client, world.coordinator)
    cells, _p, page = read(client, monkeypatch, utc(5, 7))
    assert TOO_FEW not in page
    # The running month, with the one award: the exact winning price.
    assert cells[("value", "2026-05", "Kept in the cluster (CAD)")] == "1500.00"
    assert cells[("value", "2026-04", "Not taken by anyone (CAD)")] == "770.00"
    assert cells[("fees", "2026-04", "Fees earned (CAD)")] == "480.00"
    assert cells[("rating", "2026-04", "Average rating")] == "4.25"
    assert 'id="table-members"' in page
    # A member's own figures are its own, exact, the running month included.
    login(client, market.owner_e)
    own, _p, page = read(client, monkeypatch, utc(5, 7), member="")
    assert TOO_FEW not in page
    assert own[("rating", "2026-04", "Average rating")] == "3.00"


def _user_k_sentence(page: str) -> bool:
    return "come from at least 4 other members and number at least 4" in page


def test_k_is_a_term_of_the_agreement_members_accept(client: FlaskClient, session: Session,
                                                     market: Market) -> None:
    """The coordinator proposes a larger k, the members carry it, and every member then
    reads the new rule on the agreement they accept."""
    world = market.world
    login(client, world.coordinator)
    form = client.get("/agreement/proposals/new").get_data(as_text=True)
    assert 'name="aggregate_min_group"' in form and 'value="3"' in form
    base = {"purpose": "Share overflow work fairly.", "scope_overflow_jobs": "y",
            "referral_fee_percent": "5", "platform_fee_percent": "1",
            "sunset_on": "2030-01-01", "exit_notice_days": "30",
            "information_rules": "No bid prices across the barrier.",
            "reason": "Hide smaller groups.", "voting_days": "3"}
    for wrong in ("1", "51", "many"):
        refused = client.post("/agreement/proposals/new",
                              data={**base, "aggregate_min_group": wrong})
        assert refused.status_code == 422, wrong
        assert 'id="aggregate_min_group-err"' in refused.get_data(as_text=True) or \
            "aggregate_min_group" in refused.get_data(as_text=True)
    assert client.post("/agreement/proposals/new", data={**base, "aggregate_min_group": "4"}
                       ).status_code == 302
    proposal = session.exec(select(AgreementProposal)
                            .order_by(col(AgreementProposal.id).desc())).first()
    assert proposal is not None and proposal.id is not None
    voted_at = proposal.created_at + timedelta(minutes=1)
    electorate = governance.participating_member_ids(
        session, world.cluster.id, voted_at, proposal.based_on_version)  # type: ignore[arg-type]
    for member_id in electorate:
        owner = session.exec(select(User).where(User.member_id == member_id,
                                                User.role == "owner")).first()
        assert owner is not None
        governance.cast_vote(session, owner, proposal.id, True, voted_at)
    assert governance.close_proposal(session, proposal.id,
                                     proposal.deadline + timedelta(minutes=1))
    current = agreements.agreement_in_force(session, world.owner_a.cluster_id)
    assert current is not None and current.aggregate_min_group == 4
    login(client, world.owner_b)
    assert _user_k_sentence(client.get("/agreement").get_data(as_text=True))
    # Left blank, the form keeps the version in force's k.
    login(client, world.coordinator)
    assert client.post("/agreement/proposals/new", data={**base, "exit_notice_days": "45"}
                       ).status_code == 302
    session.expire_all()
    latest = session.exec(select(AgreementProposal)
                          .order_by(col(AgreementProposal.id).desc())).first()
    assert latest is not None and latest.terms["aggregate_min_group"] == 4


@pytest.mark.parametrize(("lang", "words"), [
    ("es", "al menos 3"), ("fr", "au moins 3"), ("de", "mindestens 3")])
def test_the_rule_reads_in_every_language(client: FlaskClient, session: Session,
                                          market: Market, monkeypatch: pytest.MonkeyPatch,
                                          lang: str, words: str) -> None:
    from marketplace.clusters.service import update_preferences

    user: User = market.owner_c
    update_preferences(session, user, lang, None, None)
    login(client, user)
    agreement = client.get("/agreement").get_data(as_text=True)
    assert words in agreement
    _clock(monkeypatch, utc(6, 1))
    page = client.get(f"/dashboard?{RANGE}&member=cluster").get_data(as_text=True)
    assert words in page
    assert TOO_FEW not in page  # translated too


def test_terms_refuse_a_k_out_of_range(session: Session, market: Market) -> None:
    from marketplace.errors import ValidationError

    for wrong in (0, 1, 51):
        with pytest.raises(ValidationError) as refused:
            agreements.publish_agreement(session, market.world.coordinator,
                                         terms(aggregate_min_group=wrong), utc(6, 1))
        assert "aggregate_min_group" in refused.value.fields
