"""Money pages as each role sees them: a member's own statement (HTML, CSV, printable),
the coordinator's settlement, the barrier against the rival cluster, bad input."""

from __future__ import annotations

import csv
import io
import re
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_datetime
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale, gettext
from sqlalchemy import func
from sqlmodel import Session, select

from marketplace.clusters.service import update_preferences
from marketplace.ledger import settlement
from marketplace.ledger import views as ledger_views
from marketplace.ledger.models import LedgerEntry, Settlement, SettlementTransfer
from tests.conftest import login
from tests.ledger.conftest import JULY_2, JUNE, Ledger, busy_month

# Amounts (en_CA) and notes of June entries B takes no part in: C pays D its share, C
# pays A the referral fee and the damage, A refunds D, D's adjustment; A's, C's and
# D's nets.  None of them may reach B in any form.
NOT_FOR_B = ["3,133.02", "3133.02", "500.00", "60.01", "54.80", "Late paperwork",
             "1,286.89", "1286.89", "3,924.37", "3924.37", "3,077.35", "3077.35"]
# B's own lines: the referral fee it paid A, the platform fee, the fuel adjustment.
B_LINES = ["617.28", "123.46", "25.00", "Fuel reimbursement"]
B_NET = "-648.33"
TORONTO = ZoneInfo("America/Toronto")


@pytest.fixture(autouse=True)
def _second_of_july(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pages run on 2 July 2026: June is over and not yet approved."""
    monkeypatch.setattr(ledger_views, "utcnow", lambda: JULY_2)


@pytest.fixture
def busy(session: Session, lw: Ledger) -> Ledger:
    busy_month(session, lw)
    settlement.add_adjustment(session, lw.coordinator, JUNE, lw.b, 2_500,
                              "Fuel reimbursement", JULY_2)
    settlement.add_adjustment(session, lw.coordinator, JUNE, lw.d, -1_000, "Late paperwork",
                              JULY_2)
    return lw


def _get(client: FlaskClient, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return response.get_data(as_text=True)


def _fresh(session: Session) -> None:
    """End the test session's read transaction: see what the app committed since."""
    session.commit()
    session.expire_all()


def _count(session: Session, model: type) -> int:
    _fresh(session)
    return session.exec(select(func.count()).select_from(model)).one()


def test_a_member_sees_only_its_own_statement_lines(client: FlaskClient, session: Session,
                                                    busy: Ledger) -> None:
    login(client, busy.world.owner_b)
    index = _get(client, "/ledger")
    assert "June 2026</a>: -$648.33" in index
    page = _get(client, f"/ledger/{JUNE}")
    # Asking for another member's statement shows B its own, never C's.
    snooped = _get(client, f"/ledger/{JUNE}?member={busy.c}")
    printable = _get(client, f"/ledger/{JUNE}/print")
    raw = _get(client, f"/ledger/{JUNE}/statement.csv")
    sneaky_csv = _get(client, f"/ledger/{JUNE}/statement.csv?member={busy.d}")
    for text in (page, snooped, printable, raw, sneaky_csv):
        for line in B_LINES:
            assert line in text
        for secret in NOT_FOR_B:
            assert secret not in text, secret
    assert 'id="nets"' not in page
    rows = list(csv.reader(io.StringIO(raw)))
    lines = [r for r in rows[1:] if r and r[0] and r[-1] and r[1]]
    assert len(lines) == len(settlement.statement(session, busy.world.cluster.id, busy.b,
                                                  JUNE))
    assert rows[-1][-1] == B_NET
    # The coordinator's own pages are not for members.
    assert client.post(f"/ledger/{JUNE}/draft").status_code == 403


def test_coordinator_sees_the_nets_and_opens_any_members_statement(
        client: FlaskClient, busy: Ledger) -> None:
    login(client, busy.coordinator)
    index = _get(client, "/ledger")
    assert f'href="/ledger/{JUNE}"' in index
    page = _get(client, f"/ledger/{JUNE}")
    nets = page[page.index('id="nets"'):page.index("</table>", page.index('id="nets"'))]
    for name in ("Alpha Lawns", "Beta Stone", "Gamma Trees", "Delta Decks"):
        assert name in nets
    for net in ("$1,286.89", "-$648.33", "-$3,924.37", "$3,077.35", "$208.46"):
        assert net in nets, net
    assert re.search(r'id="conservation">[^<]*\$0\.00', page)
    for member, needle in ((busy.d, "Late paperwork"), (busy.d, "3,133.02"),
                           (busy.b, "Fuel reimbursement")):
        assert needle in _get(client, f"/ledger/{JUNE}?member={member}")
        assert needle.replace(",", "") in _get(
            client, f"/ledger/{JUNE}/statement.csv?member={member}")
        assert needle in _get(client, f"/ledger/{JUNE}/print?member={member}")
    # A coordinator has no statement of its own: it must say whose.
    _get(client, f"/ledger/{JUNE}/statement.csv", 404)


def test_the_rival_coordinator_cannot_open_our_members(client: FlaskClient,
                                                       busy: Ledger) -> None:
    login(client, busy.world.other_coordinator)
    for url in (f"/ledger/{JUNE}?member={busy.a}", f"/ledger/{JUNE}/print?member={busy.a}",
                f"/ledger/{JUNE}/statement.csv?member={busy.a}"):
        body = _get(client, url, 404)
        assert "Alpha Lawns" not in body and "1,286.89" not in body
    # Its own settlement page shows none of our money.
    own = _get(client, f"/ledger/{JUNE}")
    assert "Alpha Lawns" not in own and "1,286.89" not in own


def test_csv_speaks_the_viewers_language_with_plain_amounts(
        app: Flask, client: FlaskClient, session: Session, busy: Ledger) -> None:
    update_preferences(session, busy.world.owner_b, "fr", None, None)
    login(client, busy.world.owner_b)
    response = client.get(f"/ledger/{JUNE}/statement.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == \
        f"attachment; filename=statement-{JUNE}-{busy.b}.csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    entries = settlement.statement(session, busy.world.cluster.id, busy.b, JUNE)
    # "fr" in a Canadian cluster is Canadian French (i18n.regional).
    first_date = format_datetime(entries[0].created_at, "short", tzinfo=TORONTO,
                                 locale="fr_CA")
    with app.test_request_context(), force_locale("fr"):
        header = [gettext("Date"), gettext("What"), gettext("With"), gettext("Note"),
                  gettext("Amount (%(currency)s)", currency="CAD")]
        first_label = gettext(ledger_views.SOURCE_LABELS[entries[0].source])
        net_label = gettext("Net for the month")
    assert rows[0] == header
    assert "CAD" in rows[0][-1]
    # Dates as Canadian French writes them (2026-06-01 11 h 00); amounts as plain signed
    # decimals that any spreadsheet reads, never "617,28 $".
    assert re.fullmatch(r"2026-\d\d-\d\d \d\d h \d\d", rows[1][0]), rows[1][0]
    assert rows[1][:2] == [first_date, first_label]
    amounts = [r[-1] for r in rows[1:] if r]
    assert all(re.fullmatch(r"-?\d+\.\d\d", a) for a in amounts), amounts
    assert "-617.28" in amounts and "-123.46" in amounts and "25.00" in amounts
    assert rows[-1] == [net_label, "", "", "", B_NET]


def test_printable_statement_is_a_standalone_page(client: FlaskClient, busy: Ledger) -> None:
    login(client, busy.world.owner_b)
    page = _get(client, f"/ledger/{JUNE}/print")
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert "css/print.css" in page and "css/app.css" not in page
    assert "<nav" not in page and "socket.io" not in page
    assert "Beta Stone" in page and 'id="statement"' in page
    assert "Not settled yet" in page
    assert "-$648.33" in page


@pytest.mark.parametrize("url", ["/ledger/2026-13", "/ledger/june/print",
                                 "/ledger/2026-1/statement.csv", "/ledger/2026-00"])
def test_a_bad_month_is_a_422_with_a_message(client: FlaskClient, busy: Ledger,
                                             url: str) -> None:
    login(client, busy.world.owner_b)
    body = _get(client, url, 422)
    assert "Give the month as YYYY-MM, for example 2026-11." in body


def test_approving_through_the_form_records_the_typed_references(
        client: FlaskClient, session: Session, busy: Ledger) -> None:
    login(client, busy.coordinator)
    page = _get(client, f"/ledger/{JUNE}")
    assert f'action="/ledger/{JUNE}/draft"' in page
    assert client.post(f"/ledger/{JUNE}/draft").status_code == 302
    page = _get(client, f"/ledger/{JUNE}")
    for member in (busy.a, busy.b, busy.c, busy.d):
        assert f'name="reference-{member}"' in page
    response = client.post(f"/ledger/{JUNE}/approve", data={
        f"reference-{busy.a}": "WIRE-A-77", f"reference-{busy.c}": "  CHQ 118 ",
        "reference-999999": "ignored", "reference-x": "ignored"})
    assert response.status_code == 302
    _fresh(session)
    references = {t.member_id: t.reference for t in session.exec(select(SettlementTransfer))}
    drafted = settlement.settlement_for(session, busy.world.cluster.id, JUNE)
    assert drafted is not None and drafted.status == "approved"
    assert references == {busy.a: "WIRE-A-77", busy.b: f"{JUNE}-{drafted.id}-{busy.b}",
                          busy.c: "CHQ 118", busy.d: f"{JUNE}-{drafted.id}-{busy.d}"}
    approved = _get(client, f"/ledger/{JUNE}")
    assert "WIRE-A-77" in approved and "Record the adjustment" not in approved
    again = client.post(f"/ledger/{JUNE}/approve")
    assert again.status_code == 409
    assert "already approved" in again.get_data(as_text=True)
    # The member's statement now shows how it was settled.
    client.post("/logout")
    login(client, busy.world.owner_a)
    assert "WIRE-A-77" in _get(client, f"/ledger/{JUNE}")
    assert _count(session, SettlementTransfer) == 4


def test_approving_is_for_the_coordinator_and_only_after_the_month(
        client: FlaskClient, session: Session, busy: Ledger) -> None:
    settlement.draft_for(session, busy.coordinator, JUNE, JULY_2)
    login(client, busy.world.owner_a)
    assert client.post(f"/ledger/{JUNE}/approve").status_code == 403
    client.post("/logout")
    login(client, busy.coordinator)
    current = client.post("/ledger/2026-07/approve")
    assert current.status_code == 409
    assert "only after it ends" in current.get_data(as_text=True)
    assert client.post("/ledger/2026-05/approve").status_code == 409  # never drafted
    assert _count(session, SettlementTransfer) == 0
    _fresh(session)
    assert session.exec(select(Settlement.status)).all() == ["draft"]


def test_adjustment_form(client: FlaskClient, session: Session, busy: Ledger) -> None:
    before = _count(session, LedgerEntry)
    # A member can neither record an adjustment nor see the settlement by trying.
    login(client, busy.world.owner_a)
    for data in ({}, {"member_id": str(busy.a), "direction": "credit", "amount": "5",
                      "reason": "Bonus"}):
        refused = client.post(f"/ledger/{JUNE}/adjustments", data=data)
        assert refused.status_code == 403
        body = refused.get_data(as_text=True)
        assert 'id="nets"' not in body and "3,924.37" not in body
    client.post("/logout")

    login(client, busy.coordinator)
    bad = client.post(f"/ledger/{JUNE}/adjustments", data={
        "member_id": str(busy.a), "direction": "credit", "amount": "0", "reason": " "})
    assert bad.status_code == 422
    body = bad.get_data(as_text=True)
    assert "This field is required." in body  # the reason
    bad = client.post(f"/ledger/{JUNE}/adjustments", data={
        "member_id": str(busy.a), "direction": "charge", "amount": "0", "reason": "Fuel"})
    assert bad.status_code == 422
    assert "Enter an amount other than zero" in bad.get_data(as_text=True)
    assert 'aria-invalid="true"' in bad.get_data(as_text=True)
    assert _count(session, LedgerEntry) == before

    ok = client.post(f"/ledger/{JUNE}/adjustments", data={
        "member_id": str(busy.c), "direction": "charge", "amount": "12.50",
        "reason": "Dumpster overage"})
    assert ok.status_code == 302
    _fresh(session)
    entry = session.exec(select(LedgerEntry).order_by(LedgerEntry.id.desc())).first()  # type: ignore[union-attr]
    assert entry is not None
    assert (entry.source, entry.payer_member_id, entry.payee_member_id, entry.amount_minor,
            entry.memo, entry.month, entry.created_by_id) == (
        "adjustment", busy.c, None, 1_250, "Dumpster overage", JUNE, busy.coordinator.id)

    # A French coordinator types amounts the French way.
    update_preferences(session, busy.coordinator, "fr", None, None)
    ok = client.post(f"/ledger/{JUNE}/adjustments", data={
        "member_id": str(busy.a), "direction": "credit", "amount": "1 234,56",
        "reason": "Remboursement"})
    assert ok.status_code == 302
    _fresh(session)
    entry = session.exec(select(LedgerEntry).order_by(LedgerEntry.id.desc())).first()  # type: ignore[union-attr]
    assert entry is not None and (entry.payee_member_id, entry.amount_minor) == (busy.a,
                                                                                  123_456)

    # Once approved, June takes no more adjustments; nothing is written.
    settlement.draft_for(session, busy.coordinator, JUNE, JULY_2)
    settlement.approve(session, busy.coordinator, JUNE, {}, JULY_2)
    count = _count(session, LedgerEntry)
    locked = client.post(f"/ledger/{JUNE}/adjustments", data={
        "member_id": str(busy.a), "direction": "credit", "amount": "5", "reason": "Late"})
    assert locked.status_code == 409
    assert _count(session, LedgerEntry) == count
