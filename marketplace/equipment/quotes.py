"""What a booking would cost the booker, before it books: the price shown to confirm.

A crew lead must see the price before committing to it (issue #18): which rate
applies (hour or day, whichever is cheaper, or nothing in its own rotation period),
and, on a co-owned machine, that its own share of the fee is not charged -- exactly
what `booking.book` then writes to the ledger, because both use the same rules:
the slot checks of `booking.check_slot`, the custody terms, `pricing.price_of`, and the
ledger's own split (`money.allocate` in member-id order).  Nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from marketplace.clusters.models import User
from marketplace.clusters.service import acting_member
from marketplace.equipment import booking
from marketplace.equipment.access import get_equipment, owner_shares
from marketplace.equipment.models import Equipment, ListingStatus
from marketplace.equipment.pricing import Rate, price_of
from marketplace.errors import N_, Conflict
from marketplace.money import allocate
from marketplace.persisted import id_of


@dataclass(frozen=True)
class Quote:
    """A slot's price for one booker.  `to_pay_minor` + `own_share_minor` is
    `price_minor`: the booker pays the other owners their parts, not its own."""

    minutes: int
    rate: Rate
    price_minor: int
    own_share_minor: int
    to_pay_minor: int
    currency: str
    needs_approval: bool


def own_share(price_minor: int, shares: dict[int, int], booker_member_id: int) -> int:
    """The booker's part of the fee as the ledger splits it (it pays itself nothing)."""
    if price_minor <= 0 or booker_member_id not in shares:
        return 0
    payees = sorted(shares)
    parts = allocate(price_minor, [shares[m] for m in payees])
    return parts[payees.index(booker_member_id)]


def quote(session: Session, actor: User, equipment_id: int, starts_at: datetime,
          ends_at: datetime, now: datetime) -> Quote:
    """The price of [starts_at, ends_at) for the actor's business, or the rule the slot
    breaks (the same refusals `booking.book` gives)."""
    member = acting_member(session, actor)
    equipment = get_equipment(session, actor, equipment_id)
    if equipment.status != ListingStatus.ACTIVE:
        raise Conflict("not_bookable", N_("This machine is paused or retired and cannot be "
                                          "booked."))
    booking.check_slot(session, equipment, starts_at, ends_at, now)
    in_custody = booking.custody_terms(session, equipment, member, starts_at, ends_at)
    shares = owner_shares(session, equipment_id)
    minutes = int((ends_at - starts_at).total_seconds() // 60)
    if in_custody:
        rate, price = Rate.CUSTODY, 0
    else:
        rate, price = price_of(minutes, equipment.hour_rate_minor, equipment.day_rate_minor)
    mine = own_share(price, shares, id_of(member))
    return Quote(minutes, rate, price, mine, price - mine, equipment.currency,
                 equipment.needs_approval and member.id not in shares)


def first_slot(equipment: Equipment, tapped: datetime, now: datetime
               ) -> tuple[datetime, datetime]:
    """The slot a tap on a free piece of the week proposes: from the first of the
    machine's steps at or after the tapped time (and not before now), for the shortest
    length the machine is booked for, rounded up to whole steps."""
    step = equipment.granularity_minutes
    zone = ZoneInfo(equipment.timezone)
    local = max(tapped, now).astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    since = (local - midnight).total_seconds() / 60
    steps = -(-int(since * 60) // (step * 60))  # ceiling, to the second
    starts = (midnight + timedelta(minutes=steps * step)).astimezone(zone)
    length = -(-equipment.min_minutes // step) * step
    return starts, starts + timedelta(minutes=length)
