"""Migrations build the same schema as the models, and go down and up again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from marketplace.cli import alembic_config
from marketplace.db import make_engine


def _reset(url: str) -> None:
    engine = make_engine(url)
    SQLModel.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    engine.dispose()


def _restore(url: str) -> None:
    """Leave the test database empty with the full schema, as the other tests expect."""
    _reset(url)
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    engine.dispose()


def _drift(url: str) -> list:
    engine = make_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    return diff


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    names = set(inspect(engine).get_table_names())
    engine.dispose()
    return names


def _exclusion_constraints(url: str) -> set[str]:
    """Names of PostgreSQL exclusion constraints (autogenerate does not compare them)."""
    engine = make_engine(url)
    with engine.connect() as conn:
        names = set(conn.exec_driver_sql(
            "SELECT conname FROM pg_constraint WHERE contype = 'x'").scalars())
    engine.dispose()
    return names


def test_upgrade_downgrade_upgrade_without_drift(database_url: str) -> None:
    _reset(database_url)  # start from nothing, as a fresh install does
    config = alembic_config(database_url)
    try:
        command.upgrade(config, "head")
        assert _drift(database_url) == []
        command.downgrade(config, "base")
        assert _tables(database_url) <= {"alembic_version"}
        command.upgrade(config, "head")
        assert _drift(database_url) == []
        if database_url.startswith("postgresql"):
            assert "booking_no_overlap" in _exclusion_constraints(database_url)
        assert {t.name for t in SQLModel.metadata.sorted_tables} <= _tables(database_url)
    finally:
        _restore(database_url)


@contextmanager
def demo_season_down_and_up(database_url: str, revision: str) -> Iterator[Engine]:
    """The demo cluster seeded at head, the schema taken down to `revision` and up
    again over its rows; yields an engine on the result, and leaves the test database
    empty with the full schema afterwards."""
    from marketplace.db import session_scope, utcnow
    from marketplace.demo import seed_demo

    _reset(database_url)
    config = alembic_config(database_url)
    engine = make_engine(database_url)
    try:
        command.upgrade(config, "head")
        with session_scope(engine) as session:
            seed_demo(session, "a secret", utcnow())
        command.downgrade(config, revision)
        command.upgrade(config, "head")
        yield engine
    finally:
        engine.dispose()
        _restore(database_url)


def test_the_delivery_migrations_go_down_and_up_with_a_season_of_data(database_url: str
                                                                       ) -> None:
    """0007 and 0008 rebuild tables that rows refer to (notifications, jobs): going
    down and up again over the demo cluster's months must work and number every
    person's notifications 1, 2, 3 ... again."""
    with demo_season_down_and_up(database_url, "0006") as engine:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT user_id, COUNT(*), MIN(seq), MAX(seq) FROM notification "
                "GROUP BY user_id").all()
            sequences = dict(conn.exec_driver_sql(
                "SELECT user_id, last_seq FROM notificationsequence").all())
        assert rows and all(low == 1 and high == count for _u, count, low, high in rows)
        assert sequences == {user_id: count for user_id, count, _l, _h in rows}
        assert _drift(database_url) == []


def test_the_money_migration_keeps_what_rows_meant_and_refuses_to_lose_money(
        database_url: str) -> None:
    """0009: refunds and events from before keep their meaning (made in the app,
    applied, processed); a month's transfer above 32 bits fits; going down refuses
    while a dashboard refund (no author) or an event waiting for its payment
    exists rather than dropping it."""
    import pytest
    from sqlalchemy import text

    from marketplace.db import session_scope, utcnow
    from marketplace.demo import seed_demo

    _reset(database_url)
    config = alembic_config(database_url)
    engine = make_engine(database_url)
    try:
        command.upgrade(config, "head")
        with session_scope(engine) as session:
            seed_demo(session, "a secret", utcnow())
        command.downgrade(config, "0008")
        with engine.begin() as conn:  # a refund and an event written by the old code
            contract, user = conn.execute(text(
                "SELECT jobcontract.id, u.id FROM jobcontract, \"user\" u LIMIT 1")).one()
            conn.execute(text(
                "INSERT INTO jobpayment (contract_id, checkout_session_id, checkout_url, "
                "amount_minor, currency, status, payment_intent_id, refunded_minor, "
                "created_at) VALUES (:c, 'cs_old', 'https://x', 10000, 'CAD', 'paid', "
                "'pi_old', 2500, :now)"), {"c": contract, "now": utcnow()})
            conn.execute(text(
                "INSERT INTO paymentrefund (payment_id, amount_minor, stripe_refund_id, "
                "created_by_id, created_at) SELECT id, 2500, 're_old', :u, :now "
                "FROM jobpayment"), {"u": user, "now": utcnow()})
            conn.execute(text("INSERT INTO stripeevent (event_id, type, received_at) "
                              "VALUES ('evt_old', 'account.updated', :now)"),
                         {"now": utcnow()})
        command.upgrade(config, "head")
        with engine.begin() as conn:
            assert conn.execute(text(
                "SELECT status, origin, applied, failure_reason FROM paymentrefund")).one() \
                == ("succeeded", "app", True, "")
            assert conn.execute(text("SELECT status FROM stripeevent")).scalar() == "processed"
            assert conn.execute(text("SELECT attempt FROM jobpayment")).scalar() == 0
            assert set(conn.execute(text("SELECT DISTINCT late_from FROM ledgerentry"))
                       .scalars()) == {""}
            big = 3_000_000_000
            transfer = conn.execute(text("SELECT id FROM settlementtransfer LIMIT 1")).scalar()
            assert transfer is not None, "the demo approves a month"
            conn.execute(text("UPDATE settlementtransfer SET amount_minor = :a WHERE id = :i"),
                         {"a": big, "i": transfer})
            assert conn.execute(text("SELECT amount_minor FROM settlementtransfer "
                                     "WHERE id = :i"), {"i": transfer}).scalar() == big
            conn.execute(text("UPDATE settlementtransfer SET amount_minor = 1 WHERE id = :i"),
                         {"i": transfer})
            conn.execute(text(
                "INSERT INTO paymentrefund (payment_id, amount_minor, stripe_refund_id, "
                "status, origin, applied, failure_reason, created_at) SELECT id, 100, "
                "'re_dash', 'succeeded', 'dashboard', false, '', :now FROM jobpayment"),
                {"now": utcnow()})
        with pytest.raises(RuntimeError, match="made in Stripe's dashboard"):
            command.downgrade(config, "0008")
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM paymentrefund WHERE origin = 'dashboard'"))
            conn.execute(text(  # a refund of a payment not known yet waits for it
                "INSERT INTO stripeevent (event_id, type, status, waits_for, payload, "
                "received_at) VALUES ('evt_waits', 'charge.refunded', 'parked', 'pi_new', "
                ":payload, :now)"), {"payload": '{"payment_intent": "pi_new"}', "now": utcnow()})
        with pytest.raises(RuntimeError, match="payments not known yet are parked"):
            command.downgrade(config, "0008")
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM stripeevent WHERE event_id = 'evt_waits'"))
        command.downgrade(config, "0008")
        command.upgrade(config, "head")
        assert _drift(database_url) == []
    finally:
        engine.dispose()
        _restore(database_url)
