"""Money that stays exact when the coordinator changes settings, and at month ends.

What testers found: a currency switch mixed CAD and EUR in one net; a time-zone
change after an approval wrote a booking into the locked month, where no
transfer settled it; a month whose net passed 2^31 minor units could not be
approved on PostgreSQL.  Each test drives the real services on the suite's
database (SQLite, and PostgreSQL in CI).
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from marketplace.clusters import service as clusters
from marketplace.clusters.models import Cluster, User
from marketplace.equipment import booking
from marketplace.errors import Conflict, ValidationError
from marketplace.ledger import service as ledger
from marketplace.ledger import settlement
from marketplace.ledger.models import LedgerEntry, SettlementTransfer
from tests.conftest import invite_member, login, own_session
from tests.equipment.conftest import at
from tests.ledger.conftest import JULY_2, Ledger, all_entries, handoff_job

JUNE, JULY = "2026-06", "2026-07"
KIRITIMATI, PAGO_PAGO = "Pacific/Kiritimati", "Pacific/Pago_Pago"  # UTC+14, UTC-11
#: 10:30 UTC on 30 June is already 1 July in Kiritimati, still 29 June in Pago Pago.
APPROVED_AT = datetime(2026, 6, 30, 10, 30, tzinfo=UTC)
JULY_TUESDAY = date(2026, 7, 7)


def _settings(cluster: Cluster, **changes: str) -> clusters.ClusterSettings:
    values = {"name": cluster.name, "currency": cluster.currency,
              "default_locale": cluster.default_locale, "timezone": cluster.timezone,
              "unit_system": cluster.unit_system, **changes}
    return clusters.ClusterSettings(**values)


def _change(session: Session, lw: Ledger, **changes: str) -> None:
    cluster = session.get(Cluster, lw.world.cluster.id)
    assert cluster is not None
    clusters.update_cluster(session, lw.coordinator, _settings(cluster, **changes))


def _transfers(session: Session) -> dict[int, int]:
    session.expire_all()
    return {t.member_id: t.amount_minor for t in session.exec(select(SettlementTransfer))}


def _settled_exactly(session: Session, lw: Ledger, month: str) -> bool:
    """The approved month's transfers are exactly its nets (nothing stranded in it)."""
    nets = settlement.month_nets(session, lw.world.cluster.id, month)  # type: ignore[arg-type]
    return _transfers(session) == {m: abs(n.net) for m, n in nets.items()
                                   if m is not None and n.net}


# --- currency ------------------------------------------------------------------------


def test_the_currency_cannot_change_once_money_exists(session: Session, lw: Ledger) -> None:
    """The testers' case: a claimed hand-off and a booking in CAD, then a switch to EUR."""
    with pytest.raises(ValidationError) as refused:
        _change(session, lw, currency="EUR")
    assert refused.value.code == "currency_in_use" and "currency" in refused.value.fields
    session.rollback()
    handoff_job(session, lw)  # confirming now writes CAD entries only
    assert {e.currency for e in all_entries(session)} == {"CAD"}
    _change(session, lw, timezone="Europe/Madrid", name="Valley Green")  # the rest may change


def test_a_cluster_without_money_may_still_pick_its_currency(session: Session) -> None:
    cluster, coordinator = clusters.create_cluster(
        session, clusters.ClusterSettings("Fresh", "CAD", "en_CA", "America/Toronto"),
        "New coordinator", "new@fresh.test", "correct horse battery staple", APPROVED_AT)
    clusters.update_cluster(session, coordinator, _settings(cluster, currency="EUR"))
    session.refresh(cluster)
    assert cluster.currency == "EUR"


def test_the_settings_page_says_why_the_currency_stays(client: FlaskClient, lw: Ledger
                                                        ) -> None:
    login(client, lw.coordinator)
    cluster = lw.world.cluster
    answer = client.post("/cluster/settings", data={
        "cluster_name": cluster.name, "currency": "EUR", "default_locale": "en_CA",
        "timezone": cluster.timezone, "unit_system": "metric"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "The currency cannot change once the cluster has jobs" in page and "CAD" in page


def test_an_entry_in_another_currency_than_the_clusters_is_refused(session: Session,
                                                                   lw: Ledger) -> None:
    cluster = session.get(Cluster, lw.world.cluster.id)
    assert cluster is not None
    with pytest.raises(ValueError, match="EUR entry in a CAD cluster"):
        ledger.record(session, cluster, ledger.EntrySource.ADJUSTMENT, 99, lw.a, None, 100,
                      APPROVED_AT, currency="EUR")
    session.rollback()


def test_an_adjustment_takes_the_currency_the_cluster_has_when_it_is_written(
        session: Session, database_url: str) -> None:
    """A cluster without money switches to EUR while the coordinator's adjustment is on
    its way (here: the coordinator's session read the cluster before the switch
    committed).  The entry is in the currency read under the cluster's lock."""
    cluster, coordinator = clusters.create_cluster(
        session, clusters.ClusterSettings("Fresh", "CAD", "en_CA", "America/Toronto"),
        "New coordinator", "new@fresh.test", "correct horse battery staple", APPROVED_AT)
    owner = invite_member(session, coordinator, "Fresh Lawns", "owner@fresh.test")
    assert owner.member_id is not None and cluster.currency == "CAD"
    with own_session(database_url) as other:  # the switch commits meanwhile
        clusters.update_cluster(other, other.get(User, coordinator.id),  # type: ignore[arg-type]
                                _settings(cluster, currency="EUR"))
    entry = settlement.add_adjustment(session, coordinator, JUNE, owner.member_id, 2_500,
                                      "Fuel for the shared mower", APPROVED_AT)
    assert entry.currency == "EUR"
    session.expire_all()
    assert {e.currency for e in all_entries(session)} == {"EUR"}


# --- time zone after an approval ---------------------------------------------------------


def _approve_june_in_kiritimati(session: Session, lw: Ledger) -> None:
    _change(session, lw, timezone=KIRITIMATI)
    settlement.add_adjustment(session, lw.coordinator, JUNE, lw.a, 5_000, "June work",
                              APPROVED_AT)
    settlement.draft_for(session, lw.coordinator, JUNE, APPROVED_AT)
    settlement.approve(session, lw.coordinator, JUNE, {}, APPROVED_AT)


def test_a_time_zone_change_after_approval_never_writes_into_the_locked_month(
        session: Session, lw: Ledger) -> None:
    _approve_june_in_kiritimati(session, lw)
    assert _transfers(session) == {lw.a: 5_000}
    _change(session, lw, timezone=PAGO_PAGO)  # now it is 29 June again where the cluster is
    made = booking.book(session, lw.owner_c, lw.trailer.id, at(JULY_TUESDAY, 9),  # type: ignore[arg-type]
                        at(JULY_TUESDAY, 11), APPROVED_AT + timedelta(minutes=10))
    fee = [e for e in all_entries(session) if e.source == "booking" and e.source_id == made.id]
    assert fee and {(e.month, e.late_from) for e in fee} == {(JULY, JUNE)}
    assert _settled_exactly(session, lw, JUNE)  # June's nets are still its transfers
    owed = sum(e.amount_minor for e in fee if e.payee_member_id == lw.a)
    assert ledger.balance(session, lw.a) == owed  # settled next month, not stranded
    assert ledger.balance(session, lw.c) == -sum(e.amount_minor for e in fee)
    with pytest.raises(Conflict) as locked:  # and the coordinator cannot add to June
        settlement.add_adjustment(session, lw.coordinator, JUNE, lw.b, 100, "Late",
                                  APPROVED_AT + timedelta(minutes=20))
    assert locked.value.code == "month_locked"


def test_the_statement_line_says_which_settled_month_it_belongs_to(
        client: FlaskClient, session: Session, lw: Ledger) -> None:
    _approve_june_in_kiritimati(session, lw)
    _change(session, lw, timezone=PAGO_PAGO)
    booking.book(session, lw.owner_c, lw.trailer.id, at(JULY_TUESDAY, 9),  # type: ignore[arg-type]
                 at(JULY_TUESDAY, 11), APPROVED_AT + timedelta(minutes=10))
    login(client, lw.world.owner_a)
    page = client.get(f"/ledger/{JULY}").get_data(as_text=True)
    assert "Belongs to June 2026, which was already settled." in page
    csv = client.get(f"/ledger/{JULY}/statement.csv").get_data(as_text=True)
    assert "Belongs to June 2026, which was already settled." in csv


def test_an_entry_racing_the_approval_is_settled_or_moved_never_stranded(
        app: Flask, session: Session, lw: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """A booking made at 23:59 on 30 June commits after the coordinator approves June at
    00:01: it is either in June's transfers or in July, never in June unsettled."""
    settlement.add_adjustment(session, lw.coordinator, JUNE, lw.a, 5_000, "June work", JULY_2)
    settlement.draft_for(session, lw.coordinator, JUNE, JULY_2)
    session.commit()
    engine = app.extensions["engine"]
    month_read, approved = threading.Event(), threading.Event()
    real_open_month = ledger.open_month
    outcomes: dict[str, str] = {}

    def open_month_then_wait(*args: object, **kwargs: object) -> str:
        month = real_open_month(*args, **kwargs)  # type: ignore[arg-type]
        month_read.set()  # June was open when read: let the approval run now
        approved.wait(1)  # where the database lets it, the approval finishes first
        return month

    monkeypatch.setattr(ledger, "open_month", open_month_then_wait)
    just_before = datetime(2026, 7, 1, 3, 59, tzinfo=UTC)  # 23:59 on 30 June in Toronto
    just_after = datetime(2026, 7, 1, 4, 1, tzinfo=UTC)

    def book() -> None:
        with Session(engine, expire_on_commit=False) as own:
            actor = own.get(User, lw.owner_c.id)
            assert actor is not None
            booking.book(own, actor, lw.trailer.id, at(JULY_TUESDAY, 9),  # type: ignore[arg-type]
                         at(JULY_TUESDAY, 11), just_before)
            outcomes["book"] = "ok"

    def approve() -> None:
        month_read.wait(10)
        with Session(engine, expire_on_commit=False) as own:
            actor = own.get(User, lw.coordinator.id)
            settlement.approve(own, actor, JUNE, {}, just_after)  # type: ignore[arg-type]
            outcomes["approve"] = "ok"
        approved.set()

    threads = [threading.Thread(target=book), threading.Thread(target=approve)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes == {"book": "ok", "approve": "ok"}
    session.commit()
    assert _settled_exactly(session, lw, JUNE)
    fees = [e for e in all_entries(session) if e.source == "booking"]
    assert fees and all(e.month == JUNE and not e.late_from for e in fees) or all(
        (e.month, e.late_from) == (JULY, JUNE) for e in fees)


# --- 64-bit sums -----------------------------------------------------------------------


def test_a_month_whose_net_passes_32_bits_is_approved_and_paid_exactly(
        session: Session, lw: Ledger) -> None:
    """Every adjustment keeps its cap; their sum for one member does not fit 32 bits."""
    big = settlement.MAX_ADJUSTMENT_MINOR
    for _ in range(3):
        settlement.add_adjustment(session, lw.coordinator, JUNE, lw.a, big, "Season bonus",
                                  JULY_2)
    settlement.draft_for(session, lw.coordinator, JUNE, JULY_2)
    settlement.approve(session, lw.coordinator, JUNE, {}, JULY_2)
    assert 3 * big > 2**31 - 1
    assert _transfers(session) == {lw.a: 3 * big}
    assert ledger.balance(session, lw.a) == 0
    nets = settlement.month_nets(session, lw.world.cluster.id, JUNE)  # type: ignore[arg-type]
    assert nets[None].net == -3 * big
    assert session.exec(select(LedgerEntry.amount_minor)).all() == [big] * 3
