"""Migrations build the same schema as the models, and go down and up again."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from marketplace.cli import alembic_config
from marketplace.db import make_engine


def _reset(url: str) -> None:
    engine = make_engine(url)
    SQLModel.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
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
        _reset(database_url)
        engine = make_engine(database_url)
        SQLModel.metadata.create_all(engine)  # leave the schema the other tests expect
        engine.dispose()


def test_the_delivery_migrations_go_down_and_up_with_a_season_of_data(database_url: str
                                                                       ) -> None:
    """0007 and 0008 rebuild tables that rows refer to (notifications, jobs): going
    down and up again over the demo cluster's months must work and number every
    person's notifications 1, 2, 3 ... again."""
    from marketplace.db import session_scope, utcnow
    from marketplace.demo import seed_demo

    _reset(database_url)
    config = alembic_config(database_url)
    try:
        command.upgrade(config, "head")
        engine = make_engine(database_url)
        with session_scope(engine) as session:
            seed_demo(session, "a secret", utcnow())
        command.downgrade(config, "0006")
        command.upgrade(config, "head")
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT user_id, COUNT(*), MIN(seq), MAX(seq) FROM notification "
                "GROUP BY user_id").all()
            sequences = dict(conn.exec_driver_sql(
                "SELECT user_id, last_seq FROM notificationsequence").all())
        engine.dispose()
        assert rows and all(low == 1 and high == count for _u, count, low, high in rows)
        assert sequences == {user_id: count for user_id, count, _l, _h in rows}
        assert _drift(database_url) == []
    finally:
        _reset(database_url)
        engine = make_engine(database_url)
        SQLModel.metadata.create_all(engine)
        engine.dispose()
