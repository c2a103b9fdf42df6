"""Migration 0018 over a season of data: down to 0017 drops the dispute tables, up again
restores them, and the schema matches the models (no drift)."""

from __future__ import annotations

from sqlalchemy import inspect

from tests.test_migrations import _drift, demo_season_down_and_up

TABLES = {"memberdispute", "disputedentry", "disputeparty", "disputepanelist",
          "disputemessage", "disputevote"}


def test_the_dispute_tables_go_down_and_up_over_a_season(database_url: str) -> None:
    with demo_season_down_and_up(database_url, "0017") as engine:
        assert TABLES <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT COUNT(*) FROM memberdispute").scalar() == 0
        assert _drift(database_url) == []
