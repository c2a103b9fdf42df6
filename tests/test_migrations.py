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
