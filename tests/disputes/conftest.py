"""Dispute fixtures: the ledger's world (A and B co-own the trailer 60/40, C books it,
D is C's joint-bid partner) and a closed booking with a damage fee to dispute."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlmodel import Session

from marketplace.equipment import booking
from marketplace.equipment.models import Booking
from tests.ledger.conftest import (  # noqa: F401 - fixtures the dispute tests use
    DONE_AT,
    JULY_2,
    TUESDAY,
    Ledger,
    at,
    co_owned,
    eq,
    jobs_world,
    joint_job,
    lw,
)

DAMAGE = 10_001  # A 6_001, B 4_000


def damaged_booking(session: Session, lw: Ledger, day: date = TUESDAY,  # noqa: F811
                    damage: int = DAMAGE) -> Booking:
    """C books the co-owned trailer on `day` 9-11 (Toronto), returns it, the
    coordinator closes it with a damage fee; returns the booking (closed at 11)."""
    made = booking.book(session, lw.owner_c, lw.trailer.id, at(day, 9), at(day, 11),  # type: ignore[arg-type]
                        at(day, 9) - timedelta(days=1))
    booking.check_out(session, lw.owner_c, made.id, None, "", None, at(day, 9))  # type: ignore[arg-type]
    booking.return_machine(session, lw.owner_c, made.id, None, "", at(day, 11))  # type: ignore[arg-type]
    booking.close(session, lw.coordinator, made.id, damage, "Cracked tail light",  # type: ignore[arg-type]
                  at(day, 11))
    return made


def closed_at(day: date = TUESDAY) -> datetime:
    return at(day, 11)
