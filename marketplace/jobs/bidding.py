"""Bid windows: bids, joint bids with agreed shares, closing at the deadline, award.

The server clock decides: a bid placed at or after `closes_at` is refused
whatever the client thought.  Closing is a conditional UPDATE (open and due),
so the scheduler, a restart's catch-up sweep and a second scheduler can all
run it and the window still closes exactly once, with one set of messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_time
from sqlalchemy import update
from sqlmodel import Session, col, select

from marketplace import events
from marketplace.clusters.agreements import (
    Activity,
    participation_refusal,
    require_participation,
)
from marketplace.clusters.models import Addressee, Cluster, Member, User
from marketplace.clusters.service import acting_member, active_users_of
from marketplace.errors import N_, Conflict, Forbidden, ValidationError
from marketplace.jobs.eligibility import eligible_members, job_trades, require_eligible
from marketplace.jobs.models import Bid, BidShare, BidStatus, JobMode, JobStatus, OverflowJob
from marketplace.jobs.service import (
    MAX_VALUE_MINOR,
    _announce_award,
    get_job,
    job_today,
    require_not_started,
    write_contract,
)
from marketplace.jobs.visibility import job_public
from marketplace.money import BASIS_POINTS_WHOLE, InvalidShares, validate_shares
from marketplace.persisted import id_of


@dataclass(frozen=True)
class BidTerms:
    price_minor: int
    crew_size: int
    earliest_start: date
    note: str = ""


def _validate_terms(terms: BidTerms, today: date) -> None:
    """Refuse terms no poster could accept; `today` is the cluster's date (an earliest
    start before it is a day that is already gone)."""
    errors: dict[str, str] = {}
    if terms.earliest_start < today:
        errors["earliest_start"] = N_("The earliest start cannot be in the past: choose "
                                      "today or a later day.")
    if not 0 < terms.price_minor <= MAX_VALUE_MINOR:
        errors["price"] = N_("Enter a price above zero.")
    if not 1 <= terms.crew_size <= 500:
        errors["crew_size"] = N_("Crew size is between 1 and 500.")
    if len(terms.note) > 1000:
        errors["note"] = N_("Keep the note under 1000 characters.")
    if errors:
        raise ValidationError("invalid_bid", N_("Some fields need your attention."),
                              fields=errors)


def _open_window(session: Session, actor: User, job_id: int, now: datetime) -> OverflowJob:
    job = get_job(session, actor, job_id, for_update=True)
    if job.mode != JobMode.BID_WINDOW:
        raise Conflict("not_bid_window", N_("This job is a hand-off: claim it instead of "
                                            "bidding."))
    if job.status != JobStatus.OPEN or job.closes_at is None or job.closes_at <= now:
        raise Conflict("window_closed", N_("The bid window has closed; no more bids are "
                                           "accepted."))
    require_not_started(session, job, now)
    return job


def _existing_bid(session: Session, job_id: int, member_id: int) -> Bid | None:
    return session.exec(select(Bid).where(Bid.job_id == job_id,
                                          Bid.member_id == member_id)).first()


def place_bid(session: Session, actor: User, job_id: int, terms: BidTerms, now: datetime
              ) -> Bid:
    """Bid alone, or revise one's own bid, while the window is open."""
    member = acting_member(session, actor)
    job = _open_window(session, actor, job_id, now)
    require_eligible(session, member, job, now)
    _validate_terms(terms, job_today(session, job, now))
    bid = _existing_bid(session, id_of(job), id_of(member))
    if bid is not None and bid.is_joint:
        raise Conflict("joint_bid_exists", N_("Your business leads a joint bid on this job; "
                                              "change that bid instead."))
    is_new = bid is None
    bid = _write_terms(session, bid, job, member, actor, terms, now)
    bid.status, bid.submitted_at = BidStatus.SUBMITTED, now
    session.add(bid)
    if is_new:
        session.add(BidShare(bid_id=id_of(bid), member_id=id_of(member),
                             share_bp=BASIS_POINTS_WHOLE, confirmed_at=now))
    _tell_poster_of_bid(session, job, member, now)
    session.commit()
    return bid


def _write_terms(session: Session, bid: Bid | None, job: OverflowJob, member: Member,
                 actor: User, terms: BidTerms, now: datetime) -> Bid:
    """Create the member's bid on the job, or overwrite its terms; flushed, so it has an id."""
    if bid is None:
        bid = Bid(job_id=id_of(job), member_id=id_of(member), placed_by_id=id_of(actor),
                  created_at=now, price_minor=terms.price_minor, crew_size=terms.crew_size,
                  earliest_start=terms.earliest_start)
    bid.price_minor, bid.crew_size = terms.price_minor, terms.crew_size
    bid.earliest_start, bid.note = terms.earliest_start, terms.note.strip()
    bid.placed_by_id = id_of(actor)
    session.add(bid)
    session.flush()
    return bid


def _tell_poster_of_bid(session: Session, job: OverflowJob, member: Member, now: datetime
                        ) -> None:
    events.notify(session, active_users_of(session, [job.poster_member_id]), "bid.received",
                  N_("%(member)s bid on your job %(title)s."), now=now,
                  params={"member": member.name, "title": job.title},
                  payload={"job_id": job.id, "member_id": member.id},
                  link=f"/jobs/{job.id}")


def propose_joint_bid(
    session: Session, actor: User, job_id: int, terms: BidTerms, shares: dict[int, int],
    now: datetime,
) -> Bid:
    """A lead partner proposes a joint bid with shares; each co-bidder must confirm.

    Proposing again replaces the draft and asks every partner to confirm anew,
    so nobody is held to shares it did not see.
    """
    member = acting_member(session, actor)
    job = _open_window(session, actor, job_id, now)
    require_participation(session, member, Activity.JOINT_BIDS, now)
    require_eligible(session, member, job, now)
    _validate_terms(terms, job_today(session, job, now))
    _validate_shares(session, actor, job, member, shares, now)
    bid = _existing_bid(session, id_of(job), id_of(member))
    if bid is not None and bid.status == BidStatus.SUBMITTED:
        raise Conflict("bid_frozen", N_("This bid is submitted; its shares are frozen."))
    bid = _write_terms(session, bid, job, member, actor, terms, now)
    bid.is_joint, bid.status = True, BidStatus.DRAFT
    session.add(bid)
    session.flush()
    for old in session.exec(select(BidShare).where(BidShare.bid_id == bid.id)):
        session.delete(old)
    session.flush()
    for member_id, share in sorted(shares.items()):
        session.add(BidShare(bid_id=id_of(bid), member_id=member_id, share_bp=share,
                             confirmed_at=now if member_id == member.id else None))
    partners = [m for m in shares if m != member.id]
    events.notify(session, active_users_of(session, partners), "joint.invited",
                  N_("%(member)s invites you to a joint bid on %(title)s."), now=now,
                  params={"member": member.name, "title": job.title},
                  payload={"job_id": job.id, "bid_id": bid.id}, link=f"/jobs/{job.id}")
    session.commit()
    return bid


def _validate_shares(session: Session, actor: User, job: OverflowJob, lead: Member,
                     shares: dict[int, int], now: datetime) -> None:
    message = N_("Shares must be whole basis points, none negative, adding up to 10000 "
                 "(100 %), with your business and at least one partner.")
    try:
        validate_shares(list(shares.values()))
    except InvalidShares:
        raise ValidationError("invalid_shares", message, fields={"shares": message}) from None
    if lead.id not in shares or len(shares) < 2 or any(v <= 0 for v in shares.values()):
        raise ValidationError("invalid_shares", message, fields={"shares": message})
    for member_id in shares:
        if member_id == lead.id:
            continue
        partner = session.get(Member, member_id)
        if partner is None or partner.cluster_id != actor.cluster_id:
            raise ValidationError("unknown_partner", N_("Choose partners from your cluster."),
                                  fields={"shares": N_("Choose partners from your cluster.")})
        require_eligible(session, partner, job, now)


def confirm_joint_share(session: Session, actor: User, bid_id: int, now: datetime) -> BidShare:
    """A co-bidder agrees to its share of a joint bid."""
    member = acting_member(session, actor)
    bid = session.get(Bid, bid_id)
    share = session.get(BidShare, (bid_id, member.id)) if bid else None
    if bid is None or share is None:
        raise Forbidden("not_invited", N_("Your business is not part of this joint bid."))
    _open_window(session, actor, bid.job_id, now)
    if bid.status != BidStatus.DRAFT:
        raise Conflict("bid_frozen", N_("This bid is submitted; its shares are frozen."))
    share.confirmed_at = share.confirmed_at or now
    session.add(share)
    job = session.get(OverflowJob, bid.job_id)
    assert job is not None
    events.notify(session, active_users_of(session, [bid.member_id]), "joint.confirmed",
                  N_("%(member)s confirmed its share of your joint bid on %(title)s."),
                  now=now, params={"member": member.name, "title": job.title},
                  payload={"job_id": job.id, "bid_id": bid.id}, link=f"/jobs/{job.id}")
    session.commit()
    return share


def submit_joint_bid(session: Session, actor: User, bid_id: int, now: datetime) -> Bid:
    """The lead submits a joint bid once every partner confirmed; shares freeze here."""
    member = acting_member(session, actor)
    bid = session.get(Bid, bid_id)
    if bid is None or bid.member_id != member.id or not bid.is_joint:
        raise Forbidden("lead_only", N_("Only the lead partner can submit this joint bid."))
    job = _open_window(session, actor, bid.job_id, now)
    shares = list(session.exec(select(BidShare).where(BidShare.bid_id == bid.id)))
    if any(s.confirmed_at is None for s in shares):
        raise Conflict("unconfirmed_shares", N_("Every partner must confirm its share before "
                                                "the joint bid can be submitted."))
    done = session.exec(
        update(Bid).where(col(Bid.id) == bid.id, col(Bid.status) == BidStatus.DRAFT)
        .values(status=BidStatus.SUBMITTED.value, submitted_at=now))
    if done.rowcount != 1:
        session.rollback()
        raise Conflict("bid_frozen", N_("This bid is submitted; its shares are frozen."))
    session.refresh(bid)
    _tell_poster_of_bid(session, job, member, now)
    session.commit()
    return bid


def close_window(session: Session, job_id: int, now: datetime) -> bool:
    """Close one due bid window; True only for the one call that closed it."""
    closed = session.exec(
        update(OverflowJob)
        .where(col(OverflowJob.id) == job_id, col(OverflowJob.status) == JobStatus.OPEN,
               col(OverflowJob.mode) == JobMode.BID_WINDOW, col(OverflowJob.closes_at) <= now)
        .values(status=JobStatus.WINDOW_CLOSED.value, window_closed_at=now))
    if closed.rowcount != 1:
        session.rollback()
        return False
    job = session.get(OverflowJob, job_id)
    assert job is not None
    session.refresh(job)
    bids = list(session.exec(select(Bid).where(Bid.job_id == job.id,
                                               Bid.status == BidStatus.SUBMITTED)))
    bidder_ids = {s.member_id for b in bids
                  for s in session.exec(select(BidShare).where(BidShare.bid_id == b.id))}
    params = {"title": job.title, "count": len(bids)}
    payload = {"id": job.id, "status": job.status, "bid_count": len(bids)}
    events.notify(session, active_users_of(session, [job.poster_member_id]), "window.closed",
                  N_("The bid window for %(title)s closed with %(count)d bid(s). Choose "
                     "the winner."), now=now, params=params, payload=payload,
                  link=f"/jobs/{job.id}")
    events.notify(session, active_users_of(session, sorted(bidder_ids)), "window.closed",
                  N_("The bid window for %(title)s closed. The poster will choose a bid."),
                  now=now, params=params, payload=payload, link=f"/jobs/{job.id}")
    session.commit()
    return True


def close_due_windows(session: Session, now: datetime) -> list[int]:
    """Close every window whose deadline passed (the scheduler's sweep; safe to repeat)."""
    due = list(session.exec(select(OverflowJob.id).where(
        OverflowJob.status == JobStatus.OPEN, OverflowJob.mode == JobMode.BID_WINDOW,
        col(OverflowJob.closes_at) <= now)))
    session.commit()
    return [job_id for job_id in due if job_id is not None and close_window(session, job_id, now)]


REMIND_BEFORE = timedelta(hours=1)


def remind_closing_windows(session: Session, now: datetime) -> int:
    """Scheduler sweep: an hour before a bid window closes, tell each eligible partner
    that has not bid yet; once per window (a conditional update claims the reminder).

    The time in the text is each reader's own: recipients are told in groups of one
    time zone and language, the time formatted for that group."""
    due = list(session.exec(select(OverflowJob.id).where(
        OverflowJob.status == JobStatus.OPEN, OverflowJob.mode == JobMode.BID_WINDOW,
        col(OverflowJob.closing_reminded_at).is_(None), col(OverflowJob.closes_at) > now,
        col(OverflowJob.closes_at) <= now + REMIND_BEFORE)))
    session.commit()
    told = 0
    for job_id in due:
        claimed = session.exec(
            update(OverflowJob).where(col(OverflowJob.id) == job_id,
                                      col(OverflowJob.closing_reminded_at).is_(None))
            .values(closing_reminded_at=now))
        if claimed.rowcount != 1:
            session.rollback()
            continue
        job = session.get(OverflowJob, job_id)
        assert job is not None and job.closes_at is not None
        session.refresh(job)
        bidders = set(session.exec(select(BidShare.member_id).join(
            Bid, col(Bid.id) == BidShare.bid_id).where(Bid.job_id == job.id)))
        bidders |= set(session.exec(select(Bid.member_id).where(Bid.job_id == job.id)))
        waiting = [m.id for m in eligible_members(session, job, now) if m.id not in bidders]
        cluster = session.get(Cluster, job.cluster_id)
        groups: dict[tuple[str, str], list[Addressee]] = {}
        for user in active_users_of(session, waiting):
            zone = user.timezone or (cluster.timezone if cluster else "UTC")
            locale = user.locale or (cluster.default_locale if cluster else "en")
            groups.setdefault((zone, locale), []).append(user)
        payload = job_public(job, job_trades(session, id_of(job)))
        for (zone, locale), users in sorted(groups.items()):
            at = format_time(job.closes_at, "short", tzinfo=ZoneInfo(zone), locale=locale)
            told += events.notify(
                session, users, "window.closing",
                N_("Bid window closes at %(time)s: %(title)s, %(locality)s"), now=now,
                params={"time": at, "title": job.title, "locality": job.locality},
                payload=payload, link=f"/jobs/{job.id}")
        session.commit()
    return told


def _require_parties_take_part(session: Session, bid: Bid, now: datetime) -> None:
    """A contract binds only members that may take part now (not suspended or gone, and
    bound by the agreement in force the contract is signed under)."""
    for share in session.exec(select(BidShare).where(BidShare.bid_id == bid.id)):
        party = session.get(Member, share.member_id)
        assert party is not None
        if participation_refusal(session, party, Activity.OVERFLOW_JOBS, now) is not None:
            raise Conflict("bidder_cannot_take_part",
                           N_("%(member)s cannot take part in the cluster now (suspended, "
                              "left, or not bound by the agreement in force), so its bid "
                              "cannot be awarded. Choose another bid or cancel the job."),
                           params={"member": party.name})


def award_bid(session: Session, actor: User, job_id: int, bid_id: int, now: datetime) -> Bid:
    """The poster picks one submitted bid after the window closed; the contract is signed."""
    member = acting_member(session, actor)
    job = get_job(session, actor, job_id)
    if job.poster_member_id != member.id:
        raise Forbidden("poster_only", N_("Only the member who posted the job can award it."))
    bid = session.get(Bid, bid_id)
    if bid is None or bid.job_id != job.id or bid.status != BidStatus.SUBMITTED:
        raise ValidationError("unknown_bid", N_("Choose one of the submitted bids."),
                              fields={"bid_id": N_("Choose one of the submitted bids.")})
    require_participation(session, member, Activity.OVERFLOW_JOBS, now)
    _require_parties_take_part(session, bid, now)
    won = session.exec(
        update(OverflowJob)
        .where(col(OverflowJob.id) == job.id, col(OverflowJob.status) == JobStatus.WINDOW_CLOSED)
        .values(status=JobStatus.AWARDED.value, awarded_member_id=bid.member_id))
    if won.rowcount != 1:
        session.rollback()
        raise Conflict("not_awardable", N_("Bids can be awarded once, after the window "
                                           "closes."))
    session.refresh(job)
    shares = {s.member_id: s.share_bp
              for s in session.exec(select(BidShare).where(BidShare.bid_id == bid.id))}
    write_contract(session, job, shares, bid.id, bid.price_minor, now)
    lead = session.get(Member, bid.member_id)
    assert lead is not None
    _announce_award(session, job, sorted(shares), "job.awarded",
                    N_("You awarded %(title)s to %(member)s."), lead.name, now)
    session.commit()
    return bid


def window_open(job: OverflowJob, now: datetime) -> bool:
    """Whether `job` takes bids at `now`: a bid window, still open, before its deadline
    (the server clock decides, as `place_bid` does)."""
    return (job.mode == JobMode.BID_WINDOW and job.status == JobStatus.OPEN
            and job.closes_at is not None and job.closes_at > now)


def member_bid(session: Session, job_id: int, member_id: int | None) -> Bid | None:
    """The bid `member_id`'s business placed or leads on the job, if any (None for a
    viewer of no business)."""
    return _existing_bid(session, job_id, member_id) if member_id is not None else None
