"""Revision 0011 adds the information rules' k to every agreement version, and goes down
and up again over a season of data (acceptances and contracts refer to agreements)."""

from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from marketplace.cli import alembic_config
from marketplace.db import make_engine, session_scope, utcnow
from marketplace.demo import seed_demo
from tests.test_migrations import _drift, _reset, _restore

REVISION = "0011"


def _columns(url: str) -> set[str]:
    engine = make_engine(url)
    names = {c["name"] for c in inspect(engine).get_columns("agreement")}
    engine.dispose()
    return names


def test_k_goes_up_with_the_default_and_down_keeping_every_row(database_url: str) -> None:
    _reset(database_url)
    config = alembic_config(database_url)
    below = ScriptDirectory.from_config(config).get_revision(REVISION).down_revision
    assert isinstance(below, str)
    engine = make_engine(database_url)
    try:
        command.upgrade(config, below)
        assert "aggregate_min_group" not in _columns(database_url)
        command.upgrade(config, "head")
        with session_scope(engine) as session:
            seed_demo(session, "a secret", utcnow())
        with engine.begin() as conn:
            counts = conn.execute(text(
                "SELECT (SELECT count(*) FROM agreement), (SELECT count(*) FROM "
                "agreementacceptance), (SELECT count(*) FROM jobcontract)")).one()
            assert counts[0] and counts[1] and counts[2]
            conn.execute(text("UPDATE agreement SET aggregate_min_group = 5"))
        command.downgrade(config, below)  # in place: nothing that refers to it is rebuilt
        assert "aggregate_min_group" not in _columns(database_url)
        with engine.begin() as conn:
            assert conn.execute(text(
                "SELECT (SELECT count(*) FROM agreement), (SELECT count(*) FROM "
                "agreementacceptance), (SELECT count(*) FROM jobcontract)")).one() == counts
            # What the older code writes: a version without the column.
            conn.execute(text(
                "INSERT INTO agreement (cluster_id, version, purpose, scope_overflow_jobs, "
                "scope_equipment, scope_joint_bids, referral_fee_bp, platform_fee_bp, "
                "sunset_on, exit_notice_days, information_rules, created_by_id, created_at) "
                "SELECT cluster_id, version + 100, purpose, scope_overflow_jobs, "
                "scope_equipment, scope_joint_bids, referral_fee_bp, platform_fee_bp, "
                "sunset_on, exit_notice_days, information_rules, created_by_id, created_at "
                "FROM agreement WHERE version = 1"))
        command.upgrade(config, "head")
        with engine.begin() as conn:  # every version, old or new, gets the default k
            assert set(conn.execute(text(
                "SELECT DISTINCT aggregate_min_group FROM agreement")).scalars()) == {3}
        assert _drift(database_url) == []
    finally:
        engine.dispose()
        _restore(database_url)
