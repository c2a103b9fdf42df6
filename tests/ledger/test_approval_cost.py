"""Approving a month costs the same statements for a cluster of 2 paid members as of 14.

Why: the coordinator's click writes every member's transfer and tells every one
of their people.  A column the notification needed was left out of the query
for those people and loaded again person by person, so approving a month of
1 000 members ran 1 250 extra queries (1.3 s of a 1.5 s approval on
PostgreSQL).  Nothing about an approval may cost one statement per member.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from marketplace.ledger import settlement
from tests.conftest import invite_member
from tests.jobs.conftest import recipients
from tests.ledger.conftest import JULY, JULY_2, JUNE, Ledger
from tests.statements import recorded, shapes

AUGUST_2 = datetime(2026, 8, 2, 14, 0, tzinfo=UTC)


def _approval(session: Session, lw: Ledger, month: str, at: datetime,
              members: list[int]) -> list[str]:
    """Adjust `month` for each member, draft and approve it; the approval's statements
    (IN lists folded: SQLAlchemy spells out their placeholders only when it runs)."""
    for number, member_id in enumerate(members):
        settlement.add_adjustment(session, lw.coordinator, month, member_id, 1_000 + number,
                                  "Shared fuel", at)
    settlement.draft_for(session, lw.coordinator, month, at)
    session.expire_all()  # the approval comes in a request of its own: nothing loaded yet
    with recorded(session.get_bind()) as seen:  # type: ignore[arg-type]  # the session's engine
        settlement.approve(session, lw.coordinator, month, {}, at)
    return shapes(seen)


def test_approving_fourteen_paid_members_costs_what_two_cost(session: Session,
                                                             lw: Ledger) -> None:
    june = _approval(session, lw, JUNE, JULY_2, [lw.a, lw.b])
    extra = [invite_member(session, lw.world.coordinator, f"Extra {n}", f"extra{n}@cost.test")
             for n in range(12)]
    july = _approval(session, lw, JULY, AUGUST_2, [lw.a, lw.b] + [
        u.member_id for u in extra if u.member_id is not None])
    assert july == june
    assert {u.id for u in extra} <= set(recipients(session, "settlement.approved"))
