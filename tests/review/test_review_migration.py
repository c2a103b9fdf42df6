"""Migration 0019 over a season of data: the review tables go down and come back empty,
and an opened review with an answer survives nothing it should not (the record of
reviews has no place in the older schema)."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from tests.test_migrations import _drift, demo_season_down_and_up


def test_the_review_tables_go_down_to_0018_and_up_again(database_url: str) -> None:
    with demo_season_down_and_up(database_url, "0018") as engine:
        names = set(inspect(engine).get_table_names())
        assert {"sunsetreview", "reviewanswer"} <= names
        insert = text("INSERT INTO sunsetreview (cluster_id, agreement_version, sunset_on, "
                      "opened_at, status) VALUES (:c, 1, '2030-01-01', "
                      "'2029-12-02 05:00:00', 'open')")
        with engine.begin() as conn:
            cluster = conn.execute(text("SELECT id FROM cluster ORDER BY id LIMIT 1")).scalar()
            conn.execute(insert, {"c": cluster})
        with pytest.raises(IntegrityError), engine.begin() as conn:  # one per sunset
            conn.execute(insert, {"c": cluster})
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM sunsetreview")).scalar() == 1
        assert _drift(database_url) == []
