"""The sunset review: opened 30 days before the agreement's sunset, answered by each
member business, closed at the sunset or by a renewal; its record is the postmortem.

Opening.  The scheduler (`open_due_reviews`) opens one review per cluster and sunset
date from the first day of the 30 before the sunset date of the version in force,
counted in the cluster's time zone (the review of a sunset on 1 July opens at 00:00
on 1 June where the cluster is).  If the sunset is already nearer than that when the
task first sees it (a version published with a close sunset, the app down for a
while), the review opens at once; once the sunset has come, none opens (the cluster
winds down: clusters/exit/).  The unique key on (cluster, sunset date) makes the
opening happen once, however often or on however many instances the task runs; the
coordinator and every member's owners are told.

Answering.  Each participating member business (it accepted the version in force, has
not left, is not suspended) answers once through one of its owners: renew, change or
leave, and what it learned.  The answer may be changed -- by any of its owners -- until
the review closes (the business's thinking may move as the figures come in); one row
per business (unique key), updated in place, the time of the first answer kept.

Who sees what.  What a business learned is the postmortem: the form says so, and it is
shown with the business's name to every member and the coordinator.  Its choice is
not: the coordinator sees each business's choice; a business sees its own, and the
members see the count of each choice only once the review is closed (a running count
read before and after a rival answers would tell its choice), and only when each
choice that was made was made by at least the agreement's k businesses (as secret
votes' counts: `governance.counts_may_be_shown`).

Closing.  A review closes once (a conditional UPDATE ... WHERE status = 'open'): when a
version with another sunset date is in force (renewed: by the coordinator from the
review page, by the editor, or by a carried proposal), or at the sunset with none (wound
down: part 5's scheduler task winds the cluster down, this only records it).  The
sunset is one moment for the review and the exits: `exit.service.sunset_moment`, the
first instant of the sunset date in the cluster's time zone *as it is at each check*
(`closing_moment`), so a cluster that moves its time zone while the review is open
closes it when its members leave -- not at the old zone's midnight.  From that moment
answers and renewals are refused, whether or not the sweep has recorded the close yet.

Renewing.  A renewal that only moves the sunset later keeps every other term the
members accepted, and the review's answers are the members' say on it: the coordinator
publishes it from the review page (through `agreements.add_version`, the editor's
publishing code, in the same transaction as the review's close) once the "renew"
answers of participating businesses carry it by the charter's decision rule (majority,
two-thirds or unanimity, counted as `governance.carried` counts votes; a business that
did not answer has not agreed).  Members then accept the new version as after any
publication.  A renewal that changes terms is a change to
the agreement: the review page sends it to the proposals (governance), and the vote's
rule decides; a carried proposal with a later sunset closes the review as renewed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from marketplace import events
from marketplace.clusters.agreements import (
    AgreementTerms,
    add_version,
    aggregate_min_group,
    agreement_in_force,
    check_terms,
)
from marketplace.clusters.exit.service import sunset_moment
from marketplace.clusters.governance.service import carried, participating_member_ids
from marketplace.clusters.models import (
    Agreement,
    AgreementProposal,
    Cluster,
    Member,
    ProposalStatus,
    Role,
    User,
)
from marketplace.clusters.review.models import (
    Choice,
    ReviewAnswer,
    ReviewOutcome,
    ReviewStatus,
    SunsetReview,
)
from marketplace.clusters.review.progress import (
    TargetProgress,
    quarters_between,
    target_progress,
)
from marketplace.clusters.service import require_coordinator
from marketplace.dashboard.access import CLUSTER, scope_for
from marketplace.db import on_postgresql
from marketplace.errors import N_, Conflict, Forbidden, ValidationError, not_found
from marketplace.ledger.settlement import current_month
from marketplace.persisted import id_of
from marketplace.rows import in_cluster

#: The review opens this many days before the sunset date.
REVIEW_DAYS = 30
MAX_LESSONS = 4000
#: At most this many quarters of targets in a review (two years).
MAX_QUARTERS = 8
CHOICES = tuple(c.value for c in Choice)
log = logging.getLogger(__name__)
CHOICE_LABELS = {Choice.RENEW.value: N_("Renew"), Choice.CHANGE.value: N_("Change"),
                 Choice.LEAVE.value: N_("Leave")}


def local_midnight(day: date, timezone: str) -> datetime:
    """The first instant of `day` where the cluster is, in UTC."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def closing_moment(session: Session, review: SunsetReview) -> datetime:
    """The instant the review closes (UTC): its sunset's first instant in the cluster's
    time zone now -- the very moment the cluster's wind-down exits take effect."""
    cluster = session.get(Cluster, review.cluster_id)
    assert cluster is not None  # a foreign key
    return sunset_moment(cluster, review.sunset_on)


def opens_on(sunset_on: date) -> date:
    """The day (cluster's calendar) the review of a sunset on `sunset_on` opens."""
    return sunset_on - timedelta(days=REVIEW_DAYS)


def due_to_open(sunset_on: date, today: date) -> bool:
    """Whether the review of this sunset should be open on `today` (cluster's calendar):
    from 30 days before it until the day before it."""
    return opens_on(sunset_on) <= today < sunset_on


# -- opening ------------------------------------------------------------------------------


def _told(session: Session, cluster_id: int) -> list[User]:
    """The coordinator and the owners of every business that has not left."""
    return list(session.exec(
        select(User).outerjoin(Member, col(Member.id) == User.member_id)
        .where(User.cluster_id == cluster_id, col(User.active).is_(True),
               col(User.role).in_([Role.OWNER.value, Role.COORDINATOR.value]),
               or_(col(User.member_id).is_(None), col(Member.exit_effective_at).is_(None)))
        .order_by(col(User.id))))


def open_due_reviews(session: Session, now: datetime) -> int:
    """Scheduler sweep: open the review of every cluster whose version in force's sunset
    is within 30 days (cluster's calendar); how many this run opened."""
    horizon = now.date() + timedelta(days=REVIEW_DAYS + 2)  # any time zone's today + 30
    newest = (select(Agreement.cluster_id, func.max(Agreement.version).label("version"))
              .group_by(col(Agreement.cluster_id)).subquery())
    candidates = list(session.execute(
        sa_select(col(Agreement.cluster_id), col(Agreement.version), col(Agreement.sunset_on),
                  col(Cluster.timezone))
        .join(newest, (col(Agreement.cluster_id) == newest.c.cluster_id)
              & (col(Agreement.version) == newest.c.version))
        .join(Cluster, col(Cluster.id) == Agreement.cluster_id)
        .where(col(Agreement.sunset_on) <= horizon,
               col(Agreement.sunset_on) > now.date() - timedelta(days=2))  # not yet come
        .order_by(col(Agreement.cluster_id))))
    session.commit()
    opened = 0
    for cluster_id, version, sunset_on, timezone in candidates:
        today = now.astimezone(ZoneInfo(timezone)).date()
        if not due_to_open(sunset_on, today):
            continue
        try:  # one cluster's failure leaves the others' reviews to open; the next run retries
            opened += open_review(session, cluster_id, version, sunset_on, now)
        except Exception:
            session.rollback()
            log.exception("opening the sunset review of cluster %s (version %s, sunset %s) "
                          "failed", cluster_id, version, sunset_on)
    return opened


def open_review(session: Session, cluster_id: int, version: int, sunset_on: date,
                now: datetime) -> bool:
    """Open the review of this sunset unless it exists (INSERT ... ON CONFLICT DO
    NOTHING: two openers at once insert one row); tell everyone if this opened it."""
    insert = postgresql.insert if on_postgresql(session) else sqlite.insert
    review_id = session.execute(insert(SunsetReview).values(
        cluster_id=cluster_id, agreement_version=version, sunset_on=sunset_on,
        opened_at=now, status=ReviewStatus.OPEN.value).on_conflict_do_nothing(
            index_elements=["cluster_id", "sunset_on"])
        .returning(col(SunsetReview.id))).scalar()
    if review_id is None:  # it was opened already
        session.rollback()
        return False
    events.notify(
        session, _told(session, cluster_id), "review.opened",
        N_("The agreement reaches its sunset on %(date)s. The sunset review is open: see "
           "the outcomes against the targets, and answer for your business -- renew, "
           "change or leave -- and what it learned."),
        now=now, params={"date": sunset_on.isoformat()}, link=f"/agreement/reviews/{review_id}")
    session.commit()
    return True


# -- answering ----------------------------------------------------------------------------


def get_review(session: Session, viewer: User, review_id: int) -> SunsetReview:
    """A review of the viewer's cluster, or NotFound."""
    return in_cluster(session, SunsetReview, review_id, viewer.cluster_id)


def list_reviews(session: Session, viewer: User) -> list[SunsetReview]:
    """The viewer's cluster's reviews, newest first."""
    return list(session.exec(select(SunsetReview)
                             .where(SunsetReview.cluster_id == viewer.cluster_id)
                             .order_by(col(SunsetReview.id).desc())))


def current_review(session: Session, cluster_id: int) -> SunsetReview | None:
    """The cluster's open review, if any."""
    return session.exec(select(SunsetReview).where(
        SunsetReview.cluster_id == cluster_id,
        SunsetReview.status == ReviewStatus.OPEN.value)
        .order_by(col(SunsetReview.id).desc())).first()


def _closed_refusal(session: Session, review: SunsetReview) -> Conflict:
    return Conflict("review_closed",
                    N_("This sunset review is closed: its record is final. It is kept on "
                       "its page as the postmortem."))


def answer_refusal(session: Session, actor: User, review: SunsetReview, now: datetime
                   ) -> Forbidden | Conflict | None:
    """Why the actor may not answer for its business now (None: it may)."""
    if review.status != ReviewStatus.OPEN.value or closing_moment(session, review) <= now:
        return _closed_refusal(session, review)
    if actor.role != Role.OWNER or actor.member_id is None:
        return Forbidden("owner_only", N_("Only an owner of a member business can answer "
                                          "the review for it. Ask an owner of your "
                                          "business."))
    if actor.member_id not in participating_member_ids(session, actor.cluster_id, now):
        return Forbidden("not_participating",
                         N_("Only businesses taking part under the agreement in force (it "
                            "accepted the version, has not left, is not suspended) answer "
                            "the review."))
    return None


def answer(session: Session, actor: User, review_id: int, choice: str, lessons: str,
           now: datetime) -> ReviewAnswer:
    """Record (or change) the actor's business's answer: renew, change or leave, and
    what it learned.  Bad input changes nothing."""
    review = in_cluster(session, SunsetReview, review_id, actor.cluster_id, for_update=True)
    refusal = answer_refusal(session, actor, review, now)
    if refusal is not None:
        raise refusal
    errors: dict[str, str] = {}
    if choice not in CHOICES:
        errors["choice"] = N_("Choose renew, change or leave.")
    lessons = lessons.strip()
    if len(lessons) > MAX_LESSONS:
        errors["lessons"] = N_("Write at most %(count)d characters.")
    if errors:
        raise ValidationError("invalid_answer", N_("Some fields need your attention."),
                              fields=errors, params={"count": MAX_LESSONS})
    assert actor.member_id is not None
    for _attempt in range(2):
        existing = session.exec(select(ReviewAnswer).where(
            ReviewAnswer.review_id == review_id,
            ReviewAnswer.member_id == actor.member_id)).first()
        if existing is not None:
            existing.choice, existing.lessons = choice, lessons
            existing.user_id, existing.changed_at = id_of(actor), now
            session.add(existing)
            session.commit()
            return existing
        row = ReviewAnswer(review_id=review_id, member_id=actor.member_id,
                           user_id=id_of(actor), choice=choice, lessons=lessons,
                           answered_at=now, changed_at=now)
        session.add(row)
        try:
            session.commit()
        except IntegrityError:  # a co-owner answered at the same instant: change theirs
            session.rollback()
            review = in_cluster(session, SunsetReview, review_id, actor.cluster_id,
                                for_update=True)
            refusal = answer_refusal(session, actor, review, now)
            if refusal is not None:
                raise refusal from None
            continue
        return row
    raise Conflict("answer_race", N_("Someone answered at the same time. Reload and try "
                                     "again."))


# -- closing and renewing ------------------------------------------------------------------


def close_due_reviews(session: Session, now: datetime) -> int:
    """Scheduler sweep: close every open review whose sunset came or whose agreement was
    renewed; how many this run closed."""
    session.expire_all()  # time zones and versions as committed now
    rows = list(session.exec(
        select(SunsetReview).where(SunsetReview.status == ReviewStatus.OPEN.value)
        .order_by(col(SunsetReview.id))))
    due = []
    for row in rows:
        current = agreement_in_force(session, row.cluster_id)
        if closing_moment(session, row) <= now or \
                (current is not None and current.sunset_on != row.sunset_on):
            due.append(row.id)
    session.commit()
    closed = 0
    for review_id in due:
        if review_id is None:
            continue
        try:  # one review's failure leaves the others to close; the next run retries it
            closed += close_review(session, review_id, now)
        except Exception:
            session.rollback()
            log.exception("closing sunset review %s failed", review_id)
    return closed


def _claim(session: Session, review_id: int, now: datetime) -> bool:
    claimed = session.execute(
        update(SunsetReview)
        .where(col(SunsetReview.id) == review_id,
               col(SunsetReview.status) == ReviewStatus.OPEN.value)
        .values(status=ReviewStatus.CLOSED.value, closed_at=now))
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]  # a DML result has rowcount


def close_review(session: Session, review_id: int, now: datetime) -> bool:
    """Close one review exactly once and record its outcome; False if it was closed
    already or is not due (another process, a rerun, a renewal got there first)."""
    review = session.get(SunsetReview, review_id)
    if review is None:
        return False
    current = agreement_in_force(session, review.cluster_id)
    renewed = current is not None and current.sunset_on != review.sunset_on
    if not renewed and closing_moment(session, review) > now:
        session.rollback()
        return False
    if not _claim(session, review_id, now):
        session.rollback()
        return False
    session.refresh(review)
    if renewed:
        assert current is not None
        _record_renewal(session, review, current, now)
    else:
        review.outcome = ReviewOutcome.WOUND_DOWN.value
        session.add(review)
        events.notify(
            session, _told(session, review.cluster_id), "review.closed",
            N_("The sunset review closed: the agreement reached its sunset on %(date)s "
               "without a renewal, so the cluster winds down. The review's record stays on "
               "its page."),
            now=now, params={"date": review.sunset_on.isoformat()},
            link=f"/agreement/reviews/{review_id}")
    session.commit()
    return True


def _record_renewal(session: Session, review: SunsetReview, renewed: Agreement,
                    now: datetime) -> None:
    review.outcome = ReviewOutcome.RENEWED.value
    review.renewed_version = renewed.version
    review.renewed_sunset_on = renewed.sunset_on
    session.add(review)
    events.notify(
        session, _told(session, review.cluster_id), "review.closed",
        N_("The sunset review closed: version %(version)d renews the agreement until "
           "%(date)s. Read and accept it to keep taking part."),
        now=now, params={"version": renewed.version, "date": renewed.sunset_on.isoformat()},
        link=f"/agreement/reviews/{review.id}")


def renewal_support(session: Session, review: SunsetReview, now: datetime
                    ) -> tuple[int, int]:
    """How many participating businesses answered renew, and how many participate: a
    renewal published from the review must be carried by the charter's decision rule
    (`governance.carried`), counting "renew" answers as votes for it."""
    participants = participating_member_ids(session, review.cluster_id, now)
    renewing = set(session.exec(select(ReviewAnswer.member_id).where(
        ReviewAnswer.review_id == review.id, ReviewAnswer.choice == Choice.RENEW.value)))
    return len(renewing & participants), len(participants)


def renew(session: Session, actor: User, review_id: int, sunset_on: date | None,
          now: datetime) -> Agreement:
    """The coordinator renews the agreement from the review: the version in force with
    only a later sunset date, published (as the editor publishes) in the transaction
    that closes the review as renewed; every member then accepts it again."""
    require_coordinator(actor)
    review = in_cluster(session, SunsetReview, review_id, actor.cluster_id, for_update=True)
    if review.status != ReviewStatus.OPEN.value or closing_moment(session, review) <= now:
        raise _closed_refusal(session, review)  # from the sunset the cluster winds down
    current = agreement_in_force(session, actor.cluster_id)
    assert current is not None  # a review exists only under a published agreement
    if current.sunset_on != review.sunset_on:
        raise Conflict("already_renewed",
                       N_("Version %(version)d, with another sunset date, was published "
                          "since the review opened; the review closes with it."),
                       params={"version": current.version})
    open_proposal = session.exec(select(AgreementProposal.id).where(
        AgreementProposal.cluster_id == actor.cluster_id,
        AgreementProposal.status == ProposalStatus.OPEN.value)).first()
    if open_proposal is not None:
        raise Conflict("proposal_open",
                       N_("Members are voting on proposal %(proposal)d. The renewal must "
                          "wait for its outcome."), params={"proposal": open_proposal})
    if sunset_on is None or sunset_on <= current.sunset_on:
        message = N_("A renewal sets a sunset date later than the current one (%(date)s).")
        raise ValidationError("invalid_renewal", message, fields={"sunset_on": message},
                              params={"date": current.sunset_on.isoformat()})
    terms = replace(AgreementTerms.of(current), sunset_on=sunset_on)
    check_terms(session, actor.cluster_id, terms, now)
    votes, participants = renewal_support(session, review, now)
    if not carried(current.decision_rule, votes, participants):
        raise Conflict("renewal_not_carried",
                       N_("%(votes)d of %(participants)d participating businesses answered "
                          "renew, which does not carry a renewal by the agreement's rule. "
                          "Businesses may change their answers until the sunset; or propose "
                          "the renewal and let the members vote."),
                       params={"votes": votes, "participants": participants})
    if not _claim(session, review_id, now):
        session.rollback()
        raise _closed_refusal(session, review)
    published = add_version(session, actor.cluster_id, id_of(actor), terms, now)
    session.refresh(review)
    _record_renewal(session, review, published, now)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict("agreement_version_race",
                       N_("Someone published a new version at the same time. Reload and "
                          "try again.")) from None
    return published


# -- what a viewer sees --------------------------------------------------------------------


def tally_may_be_shown(counts: dict[str, int], k: int) -> bool:
    """Each choice that was made, made by at least k businesses (or by none)."""
    return all(count == 0 or count >= k for count in counts.values())


@dataclass(frozen=True)
class AnswerRow:
    member_id: int
    member_name: str
    choice: str | None  # None: the viewer may not see it
    lessons: str
    answered_at: datetime
    changed_at: datetime


@dataclass(frozen=True)
class ReviewView:
    """A review as one viewer may read it (the barrier for reviews: every page, CSV and
    API answer is built from this)."""

    review: SunsetReview
    closes_at: datetime  # `closing_moment`: the sunset where the cluster is now
    agreement: Agreement | None  # the version reviewed
    participants: int | None  # businesses that may answer (None once closed)
    answered: int
    tally: dict[str, int] | None  # choice -> businesses; None: not shown to this viewer
    answers: tuple[AnswerRow, ...]
    mine: ReviewAnswer | None
    may_answer: bool
    may_renew: bool
    renew_votes: int  # participating businesses that answered renew
    renewal_carried: bool  # whether those answers carry a renewal by the charter's rule
    is_coordinator: bool
    progress: tuple[TargetProgress, ...]
    quarters: tuple[str, ...]
    k: int

    @property
    def is_open(self) -> bool:
        return self.review.status == ReviewStatus.OPEN.value


def review_quarters(session: Session, cluster: Cluster, review: SunsetReview,
                    now: datetime) -> tuple[str, ...]:
    """The quarters the review measures: from the first agreement's quarter (at most
    MAX_QUARTERS back) to the quarter running now, or the sunset's once it has come."""
    first = session.exec(select(func.min(Agreement.created_at))
                         .where(Agreement.cluster_id == cluster.id)).one()
    end = min(current_month(cluster, now),
              (review.sunset_on - timedelta(days=1)).strftime("%Y-%m"))
    start = current_month(cluster, first) if first is not None else end
    found = quarters_between(min(start, end), end)
    return found[-MAX_QUARTERS:]


def review_view(session: Session, viewer: User, review: SunsetReview, now: datetime
                ) -> ReviewView:
    if review.cluster_id != viewer.cluster_id:
        raise not_found()
    is_coordinator = viewer.role == Role.COORDINATOR
    rows = list(session.exec(
        select(ReviewAnswer, Member.name)
        .join(Member, col(Member.id) == ReviewAnswer.member_id)
        .where(ReviewAnswer.review_id == review.id).order_by(Member.name)))
    counts = {c: sum(1 for a, _n in rows if a.choice == c) for c in CHOICES}
    k = aggregate_min_group(session, review.cluster_id)
    is_open = review.status == ReviewStatus.OPEN.value
    if is_coordinator:
        tally: dict[str, int] | None = counts
    elif not is_open and tally_may_be_shown(counts, k):
        tally = counts
    else:
        tally = None
    answers = tuple(AnswerRow(a.member_id, name,
                              a.choice if is_coordinator or a.member_id == viewer.member_id
                              else None, a.lessons, a.answered_at, a.changed_at)
                    for a, name in rows)
    mine = next((a for a, _n in rows
                 if viewer.member_id is not None and a.member_id == viewer.member_id), None)
    agreement = session.exec(select(Agreement).where(
        Agreement.cluster_id == review.cluster_id,
        Agreement.version == review.agreement_version)).first()
    cluster = session.get(Cluster, review.cluster_id)
    assert cluster is not None
    quarters = review_quarters(session, cluster, review, now)
    scope = scope_for(session, viewer, CLUSTER)
    targets: dict[str, int] = dict(agreement.targets) if agreement is not None else {}
    progress = tuple(target_progress(session, scope, targets, quarters, now))
    votes, participating = renewal_support(session, review, now)
    rule = agreement.decision_rule if agreement is not None else "majority"
    closes_at = closing_moment(session, review)
    return ReviewView(
        review=review, closes_at=closes_at, agreement=agreement,
        renew_votes=votes, renewal_carried=carried(rule, votes, participating),
        participants=len(participating_member_ids(session, review.cluster_id, now))
        if is_open else None,
        answered=len(rows), tally=tally, answers=answers, mine=mine,
        may_answer=answer_refusal(session, viewer, review, now) is None,
        may_renew=is_coordinator and is_open and closes_at > now,
        is_coordinator=is_coordinator,
        progress=progress, quarters=quarters, k=k)


def review_summary(session: Session, review: SunsetReview) -> dict[str, Any]:
    """The review's public facts (every member may read them)."""
    return {"id": review.id, "sunset_on": review.sunset_on.isoformat(),
            "agreement_version": review.agreement_version, "status": review.status,
            "opened_at": review.opened_at.isoformat(),
            "closes_at": closing_moment(session, review).isoformat(),
            "closed_at": review.closed_at.isoformat() if review.closed_at else None,
            "outcome": review.outcome, "renewed_version": review.renewed_version,
            "renewed_sunset_on": review.renewed_sunset_on.isoformat()
            if review.renewed_sunset_on else None}

