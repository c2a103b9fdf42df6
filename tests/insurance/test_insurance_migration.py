"""Migration 0014: a self-stated expiry is not turned into a verified one.

Typed dates become pending records without a document, which the coordinator can
verify, and stop counting; going down gives them back to the members."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from marketplace.cli import alembic_config
from tests.test_migrations import demo_season_down_and_up


def test_typed_expiries_become_pending_records_and_come_back_going_down(database_url: str) -> None:
    # The demo at head has verified certificates; at 0013 those dates are all the old
    # schema can hold (typed ones), and going up again must not call them verified.
    with demo_season_down_and_up(database_url, "0013") as engine:
        with engine.connect() as conn:
            verified = conn.execute(
                text(
                    "SELECT COUNT(*) FROM member WHERE insurance_expires_on IS NOT NULL "
                    "OR insurance_coverage_minor IS NOT NULL"
                )
            ).scalar()
            carried = conn.execute(
                text(
                    "SELECT c.member_id, c.status, c.document IS NULL, c.coverage_minor, "
                    "c.currency, c.expires_on FROM insurancecertificate c "
                    "JOIN member m ON m.id = c.member_id ORDER BY c.member_id"
                )
            ).all()
            members = conn.execute(text("SELECT COUNT(*) FROM member")).scalar()
        assert verified == 0
        assert len(carried) == members and members
        assert {
            (status, no_document, coverage, currency)
            for _m, status, no_document, coverage, currency, _d in carried
        } == {("pending", True, None, "CAD")}
        expiries = {member: str(expires_on) for member, *_rest, expires_on in carried}
        command.downgrade(alembic_config(database_url), "0013")
        with engine.connect() as conn:
            restored = {
                member: str(expires_on)
                for member, expires_on in conn.execute(
                    text("SELECT id, insurance_expires_on FROM member ORDER BY id")
                )
            }
        assert restored == expiries
        command.upgrade(alembic_config(database_url), "head")
