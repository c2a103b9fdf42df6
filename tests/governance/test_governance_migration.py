"""Migration 0016 over a season of data: existing agreement versions keep the rule the
product assumed until now (the coordinator alone proposes, by majority, openly)."""

from __future__ import annotations

from sqlalchemy import inspect

from tests.test_migrations import _drift, demo_season_down_and_up


def test_existing_versions_get_the_default_rule_and_no_proposal_survives_going_down(
    database_url: str,
) -> None:
    with demo_season_down_and_up(database_url, "0015") as engine:
        with engine.connect() as conn:
            rules = conn.exec_driver_sql(
                "SELECT decision_rule, members_may_propose, secret_votes FROM agreement"
            ).all()
        assert rules and {tuple(r) for r in rules} == {("majority", False, False)}
        assert {"agreementproposal", "proposalvote"} <= set(inspect(engine).get_table_names())
        assert _drift(database_url) == []
