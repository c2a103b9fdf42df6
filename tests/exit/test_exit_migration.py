"""Migration 0020 over a season of data with an exit that took effect: a co-owner of the
demo's skid steer left and was bought out; the schema goes down to 0019 and up again."""

from __future__ import annotations

from datetime import timedelta

from alembic import command
from sqlalchemy import inspect
from sqlmodel import select

from marketplace.cli import alembic_config
from marketplace.clusters.exit import service as exits
from marketplace.clusters.models import Member
from marketplace.db import make_engine, session_scope, utcnow
from marketplace.demo import seed_demo
from marketplace.equipment.models import Equipment, EquipmentOwner
from tests.test_migrations import _drift, _reset, _restore


def test_an_exit_goes_down_to_0019_and_up_again(database_url: str) -> None:
    _reset(database_url)
    config = alembic_config(database_url)
    engine = make_engine(database_url)
    now = utcnow()
    try:
        command.upgrade(config, "head")
        with session_scope(engine) as session:
            seed_demo(session, "a secret", now)
        with session_scope(engine) as session:
            owner = session.exec(select(EquipmentOwner).order_by(
                EquipmentOwner.share_bp.desc())).first()  # type: ignore[attr-defined]
            assert owner is not None
            machine = session.get(Equipment, owner.equipment_id)
            member = session.get(Member, owner.member_id)
            assert machine is not None and member is not None
            machine.agreed_value_minor = 50_000_00
            member.exit_effective_at = now - timedelta(minutes=1)
            session.add(machine)
            session.add(member)
            session.commit()
            assert exits.take_due_exits(session, now) == 1
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT COUNT(*) FROM exitbuyout").scalar() == 1
        command.downgrade(config, "0019")
        assert not {"memberexit", "exitbuyout"} & set(inspect(engine).get_table_names())
        assert "agreed_value_minor" not in {
            c["name"] for c in inspect(engine).get_columns("equipment")}
        command.upgrade(config, "head")
        assert _drift(database_url) == []
    finally:
        engine.dispose()
        _restore(database_url)
