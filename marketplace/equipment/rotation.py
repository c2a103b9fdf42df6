"""Rotation of co-owned machines: who holds it each period, swaps, and hand-overs.

Fairness is weighted apportionment, one period at a time.  After k periods a
co-owner with share s is "owed" k * s / 10 000 periods.  The next period goes
to a co-owner still below its upper quota (held < ceil(owed)): the one that
would be owed the most after this period, so a large share about to fall
behind goes before a small one that can wait; ties go to the lower member id,
so the plan is the same whoever computes it.  The previous holder is passed
over when someone else is also below quota, so nobody holds the machine twice
in a row unless its share makes that unavoidable.  Over any horizon each
count stays within two periods of its exact share, in practice about one
(tests/equipment/test_rotation.py proves the bound).

Swaps exchange two whole periods and so never change anyone's count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from marketplace import events
from marketplace.clusters.models import Member, User
from marketplace.clusters.service import acting_member, active_users_of
from marketplace.equipment.access import get_equipment, owner_shares, require_manager
from marketplace.equipment.models import (
    Custody,
    CustodySwap,
    Equipment,
    RotationPeriod,
    RotationPlan,
    SwapStatus,
)
from marketplace.errors import N_, Conflict, Forbidden, ValidationError, not_found
from marketplace.money import BASIS_POINTS_WHOLE
from marketplace.persisted import id_of

HORIZON = 8  # periods assigned ahead of the current one


def next_holder(shares: Mapping[int, int], held: Mapping[int, int], previous: int | None
                ) -> int:
    """Who holds the machine next, given the counts so far (see the module docstring)."""
    total = sum(held.get(m, 0) for m in shares) + 1
    members = sorted(shares)

    def owed(member: int) -> int:  # in 1/10 000 of a period, to stay in integers
        return total * shares[member] - held.get(member, 0) * BASIS_POINTS_WHOLE

    below_quota = [m for m in members if owed(m) > 0]
    others = [m for m in below_quota if m != previous]
    # Passing over the previous holder is fine while that leaves it less than a
    # whole period short of its share; beyond that it must hold again.
    if others and (previous is None or previous not in shares
                   or owed(previous) < BASIS_POINTS_WHOLE):
        below_quota = others
    # Ranked by what they would be owed after this period, so a big share that is
    # about to fall behind goes first, not a small one that can wait a turn.
    return max(below_quota, key=lambda m: (owed(m) + shares[m], -m))


def apportion(shares: Mapping[int, int], periods: int, history: Sequence[int] = ()
              ) -> list[int]:
    """The holders of the next `periods` periods after `history` (pure, for tests too)."""
    held: dict[int, int] = {}
    for member in history:
        held[member] = held.get(member, 0) + 1
    previous = history[-1] if history else None
    holders = []
    for _ in range(periods):
        member = next_holder(shares, held, previous)
        held[member] = held.get(member, 0) + 1
        holders.append(member)
        previous = member
    return holders


def period_bounds(plan: RotationPlan, timezone: str, index: int) -> tuple[datetime, datetime]:
    """UTC start and end of period `index`: local midnights in the machine's time zone."""
    step = timedelta(days=7 if plan.period == RotationPeriod.WEEK else 1)
    zone = ZoneInfo(timezone)

    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)

    first = plan.starts_on + step * index
    return midnight(first), midnight(first + step)


def current_index(plan: RotationPlan, timezone: str, now: datetime) -> int:
    """The period containing `now` (0 before the plan starts)."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    days = (today - plan.starts_on).days
    if days < 0:
        return 0
    return days // (7 if plan.period == RotationPeriod.WEEK else 1)


def ensure_periods(session: Session, plan: RotationPlan, equipment: Equipment,
                   now: datetime) -> int:
    """Assign custody through the current period + HORIZON; returns how many were added.

    Safe to run twice or in two processes at once: the (plan, index) unique key
    refuses a second assignment of a period, and that run simply stops.
    """
    rows = list(session.exec(select(Custody).where(Custody.plan_id == plan.id)
                             .order_by(col(Custody.index))))
    wanted_last = current_index(plan, equipment.timezone, now) + HORIZON
    next_index = rows[-1].index + 1 if rows else 0
    if next_index > wanted_last:
        return 0
    shares = owner_shares(session, id_of(equipment))
    holders = apportion(shares, wanted_last - next_index + 1, [r.member_id for r in rows])
    for offset, member_id in enumerate(holders):
        index = next_index + offset
        starts_at, ends_at = period_bounds(plan, equipment.timezone, index)
        session.add(Custody(plan_id=id_of(plan), equipment_id=id_of(equipment), index=index,
                            member_id=member_id, starts_at=starts_at, ends_at=ends_at))
    try:
        session.commit()
    except IntegrityError:  # another run assigned them first
        session.rollback()
        return 0
    return len(holders)


def create_plan(session: Session, actor: User, equipment_id: int, period: str,
                starts_on: date, now: datetime) -> RotationPlan:
    """Start rotating a co-owned machine among all its co-owners."""
    equipment = get_equipment(session, actor, equipment_id, for_update=True)
    require_manager(session, actor, equipment)
    if len(owner_shares(session, equipment_id)) < 2:
        raise Conflict("not_co_owned", N_("Only a machine with several co-owners rotates."))
    errors: dict[str, str] = {}
    if period not in {p.value for p in RotationPeriod}:
        errors["period"] = N_("Choose day or week.")
    if starts_on < now.astimezone(ZoneInfo(equipment.timezone)).date():
        errors["starts_on"] = N_("The rotation cannot start in the past.")
    if errors:
        raise ValidationError("invalid_plan", N_("Some fields need your attention."),
                              fields=errors)
    if session.exec(select(RotationPlan).where(
            RotationPlan.equipment_id == equipment_id)).first() is not None:
        raise Conflict("plan_exists", N_("This machine already has a rotation plan."))
    plan = RotationPlan(equipment_id=equipment_id, period=period, starts_on=starts_on,
                        created_by_id=id_of(actor), created_at=now)
    session.add(plan)
    session.commit()
    ensure_periods(session, plan, equipment, now)
    return plan


def plan_for(session: Session, equipment_id: int) -> RotationPlan | None:
    """The machine's rotation plan, if it has one."""
    return session.exec(select(RotationPlan).where(
        RotationPlan.equipment_id == equipment_id)).first()


def schedule(session: Session, plan: RotationPlan, now: datetime) -> list[Custody]:
    """The current and upcoming periods, in order."""
    return list(session.exec(select(Custody).where(
        Custody.plan_id == plan.id, col(Custody.ends_at) > now).order_by(col(Custody.index))))


def custody_overlapping(session: Session, equipment_id: int, starts_at: datetime,
                        ends_at: datetime) -> list[Custody]:
    """The custody periods of a machine that overlap [starts_at, ends_at)."""
    return list(session.exec(select(Custody).where(
        Custody.equipment_id == equipment_id, col(Custody.starts_at) < ends_at,
        col(Custody.ends_at) > starts_at).order_by(col(Custody.index))))


def custody_by_id(session: Session, custody_id: int) -> Custody:
    """One custody period (callers have already checked the viewer's access)."""
    custody = session.get(Custody, custody_id)
    if custody is None:
        raise not_found()
    return custody


def upcoming_handovers(session: Session, member_id: int, now: datetime,
                       days: int = 14) -> list[tuple[Custody, Custody | None]]:
    """Periods starting in the next `days` where the member gives or takes a machine.

    Each item is (the new period, the one before it); periods that do not
    change hands are left out.
    """
    soon = session.exec(select(Custody).where(
        col(Custody.starts_at) > now, col(Custody.starts_at) <= now + timedelta(days=days))
        .order_by(col(Custody.starts_at))).all()
    result = []
    for period in soon:
        previous = session.exec(select(Custody).where(
            Custody.plan_id == period.plan_id, Custody.index == period.index - 1)).first()
        giver = previous.member_id if previous else None
        if giver == period.member_id or member_id not in (giver, period.member_id):
            continue
        result.append((period, previous))
    return result


def _own_period(session: Session, actor: User, custody_id: int) -> tuple[Custody, Member]:
    member = acting_member(session, actor)
    custody = session.get(Custody, custody_id)
    if custody is None:
        raise not_found()
    get_equipment(session, actor, custody.equipment_id)  # same cluster, or NotFound
    return custody, member


def release(session: Session, actor: User, custody_id: int, now: datetime) -> Custody:
    """The holder lets other members book the machine during its period."""
    custody, member = _own_period(session, actor, custody_id)
    if custody.member_id != member.id:
        raise Forbidden("not_holder", N_("Only the co-owner holding the machine in that period "
                                         "can release it."))
    if custody.ends_at <= now:
        raise Conflict("period_passed", N_("That period is already over."))
    custody.released = True
    session.add(custody)
    session.commit()
    return custody


def request_swap(session: Session, actor: User, offered_id: int, wanted_id: int,
                 now: datetime) -> CustodySwap:
    """Offer one of your periods for another co-owner's; it swaps when they accept."""
    offered, member = _own_period(session, actor, offered_id)
    wanted = session.get(Custody, wanted_id)
    if wanted is None or wanted.plan_id != offered.plan_id:
        raise not_found()
    if offered.member_id != member.id:
        raise Forbidden("not_holder", N_("You can only offer a period your business holds."))
    if wanted.member_id == member.id:
        raise ValidationError("same_holder", N_("Both periods are already yours."),
                              fields={"wanted_id": N_("Choose another co-owner's period.")})
    _require_not_started(offered, wanted, now)
    swap = CustodySwap(plan_id=offered.plan_id, offered_id=offered_id, wanted_id=wanted_id,
                       requested_by_id=id_of(actor), created_at=now)
    session.add(swap)
    session.flush()
    equipment = session.get(Equipment, offered.equipment_id)
    assert equipment is not None
    events.notify(session, active_users_of(session, [wanted.member_id]), "custody.swap_requested",
                  N_("%(member)s asks to swap periods of %(machine)s with you."), now=now,
                  params={"member": member.name, "machine": equipment.name},
                  payload={"swap_id": swap.id, "equipment_id": equipment.id},
                  link=f"/equipment/{equipment.id}/rotation")
    session.commit()
    return swap


def _require_not_started(first: Custody, second: Custody, now: datetime) -> None:
    if first.starts_at <= now or second.starts_at <= now:
        raise Conflict("period_passed", N_("One of these periods has already started; only "
                                           "future periods can be swapped."))


def answer_swap(session: Session, actor: User, swap_id: int, accept: bool, now: datetime
                ) -> CustodySwap:
    """The other co-owner accepts (the two periods change hands) or declines."""
    member = acting_member(session, actor)
    swap = session.exec(select(CustodySwap).where(CustodySwap.id == swap_id)
                        .with_for_update()).first()
    if swap is None:
        raise not_found()
    periods = {c.id: c for c in session.exec(select(Custody).where(
        col(Custody.id).in_([swap.offered_id, swap.wanted_id])).with_for_update())}
    offered, wanted = periods[swap.offered_id], periods[swap.wanted_id]
    get_equipment(session, actor, wanted.equipment_id)
    if swap.status != SwapStatus.PENDING:
        raise Conflict("swap_answered", N_("This swap has already been answered."))
    requester = session.get(User, swap.requested_by_id)
    # Another swap (or a double submit of this one) may have moved either period since.
    stale = requester is None or offered.member_id != requester.member_id
    if member.id not in (offered.member_id, wanted.member_id) or (
            not stale and wanted.member_id != member.id):
        raise Forbidden("not_swap_partner", N_("Only the co-owner asked can answer this swap."))
    if accept and stale:
        raise Conflict("swap_stale", N_("These periods have changed hands since the swap was "
                                        "asked for. Ask again if you still want to swap."))
    if accept:
        _require_not_started(offered, wanted, now)
    answered = session.exec(
        update(CustodySwap).where(col(CustodySwap.id) == swap.id,
                                  col(CustodySwap.status) == SwapStatus.PENDING)
        .values(status=(SwapStatus.ACCEPTED if accept else SwapStatus.DECLINED).value,
                decided_at=now))
    if answered.rowcount != 1:
        session.rollback()
        raise Conflict("swap_answered", N_("This swap has already been answered."))
    if accept:
        requester_member = offered.member_id
        offered.member_id, wanted.member_id = wanted.member_id, requester_member
        offered.released = wanted.released = False
        session.add(offered)
        session.add(wanted)
    session.refresh(swap)
    equipment = session.get(Equipment, wanted.equipment_id)
    assert equipment is not None
    events.notify(session, [requester] if requester else [], "custody.swap_answered",
                  N_("%(member)s accepted your swap for %(machine)s.") if accept else
                  N_("%(member)s declined your swap for %(machine)s."), now=now,
                  params={"member": member.name, "machine": equipment.name},
                  payload={"swap_id": swap.id, "status": swap.status},
                  link=f"/equipment/{equipment.id}/rotation")
    session.commit()
    return swap


def pending_swaps(session: Session, plan: RotationPlan) -> list[CustodySwap]:
    """Swaps waiting for an answer."""
    return list(session.exec(select(CustodySwap).where(
        CustodySwap.plan_id == plan.id, CustodySwap.status == SwapStatus.PENDING)
        .order_by(col(CustodySwap.id))))


def _announce_handover(session: Session, custody: Custody, column: str, message: str,
                       now: datetime) -> bool:
    """Claim the notice with a conditional update, then tell both holders once."""
    claimed = session.exec(
        update(Custody).where(col(Custody.id) == custody.id,
                              getattr(Custody, column).is_(None)).values({column: now}))
    if claimed.rowcount != 1:
        session.rollback()
        return False
    previous = session.exec(select(Custody).where(Custody.plan_id == custody.plan_id,
                                                  Custody.index == custody.index - 1)).first()
    if previous is None or previous.member_id == custody.member_id:
        session.commit()  # nothing changes hands
        return False
    equipment = session.get(Equipment, custody.equipment_id)
    giver = session.get(Member, previous.member_id)
    taker = session.get(Member, custody.member_id)
    assert equipment is not None and giver is not None and taker is not None
    events.notify(session, active_users_of(session, [giver.id, taker.id]), "custody.handover",
                  message, now=now,
                  params={"machine": equipment.name, "from": giver.name, "to": taker.name,
                          "place": equipment.locality},
                  payload={"equipment_id": equipment.id, "custody_id": custody.id,
                           "from_member_id": giver.id, "to_member_id": taker.id,
                           "starts_at": custody.starts_at.isoformat()},
                  link=f"/equipment/{equipment.id}/rotation")
    session.commit()
    return True


def rotation_sweep(session: Session, now: datetime) -> int:
    """Keep every plan assigned ahead and send due hand-over notices; safe to repeat."""
    done = 0
    for plan in session.exec(select(RotationPlan)).all():
        equipment = session.get(Equipment, plan.equipment_id)
        assert equipment is not None
        done += ensure_periods(session, plan, equipment, now)
    due_eve = session.exec(select(Custody).where(
        col(Custody.eve_notice_at).is_(None), col(Custody.starts_at) > now,
        col(Custody.starts_at) <= now + timedelta(days=1))).all()
    for custody in due_eve:
        done += _announce_handover(session, custody, "eve_notice_at", N_(
            "Tomorrow %(machine)s passes from %(from)s to %(to)s at %(place)s."), now)
    due_start = session.exec(select(Custody).where(
        col(Custody.start_notice_at).is_(None), col(Custody.starts_at) <= now,
        col(Custody.ends_at) > now)).all()
    for custody in due_start:
        done += _announce_handover(session, custody, "start_notice_at", N_(
            "Hand-over today: %(machine)s passes from %(from)s to %(to)s at %(place)s."), now)
    return done

