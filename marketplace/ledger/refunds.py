"""Refunds of a job's card payment, from the app or from Stripe's dashboard.

A refund gives the customer money back; each party gives back the same
fraction of what it was transferred, rounded down on the running total (so a
payment refunded in pieces takes back what one refund of it all would), and
the platform absorbs its fee's part and the fractions of a cent.  The steps
are rows, committed before each call to Stripe, so a crash, a timeout or a
refusal part-way leaves a record that says what happened and what is still
to do:

1. Under the payment's row lock the refund is written as pending and the
   amount reserved (`refunded_minor`): a double tap waits, then sees the
   money already reserved.  A form's `request_key` makes its second submission
   return the first refund.
2. Stripe is asked with the refund row's id as idempotency key; a definite
   refusal frees the amount, an unsure answer leaves the row pending for the
   scheduler to ask again with the same key.
3. Once it stands, one PayoutReversal row per transfer is written; each is
   sent under its own key and retried by the scheduler until Stripe agrees,
   with a new key after a refusal.  Its JOB_REFUND and REVERSAL entries are
   written when Stripe agrees, in one month, like a payout's.

A refund made in Stripe's dashboard reaches us as `charge.refunded`, whose
`amount_refunded` is cumulative: what exceeds what we hold as refunded is the
dashboard's, recorded once however often or late the event comes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from marketplace import events
from marketplace.clusters.models import Addressee, Cluster, Role, User
from marketplace.clusters.service import acting_member, active_users_of
from marketplace.errors import N_, Conflict, Forbidden, ValidationError
from marketplace.jobs.models import JobContract, OverflowJob
from marketplace.ledger.contracts import contract_lead
from marketplace.ledger.models import (
    PLATFORM,
    EntrySource,
    JobPayment,
    PaymentRefund,
    PaymentStatus,
    Payout,
    PayoutReversal,
    PayoutStatus,
    RefundStatus,
)
from marketplace.ledger.payments import contract_for, locked_payment
from marketplace.ledger.service import record
from marketplace.ledger.stripe_gateway import GatewayError
from marketplace.persisted import id_of, stored_id

log = logging.getLogger(__name__)
#: A pending refund younger than this is still being asked by its own request.
RETRY_AFTER = timedelta(minutes=1)


class RefundGateway(Protocol):
    def refund(self, key: str, payment_intent_id: str, amount_minor: int) -> str: ...

    def refunded_total(self, payment_intent_id: str) -> int: ...

    def reverse_transfer(self, key: str, transfer_id: str, amount_minor: int) -> str: ...


def _payouts_of(session: Session, payment: JobPayment) -> list[Payout]:
    return list(session.exec(select(Payout).where(Payout.contract_id == payment.contract_id)
                             .order_by(col(Payout.id))))


def share_of(payout: Payout, payment: JobPayment, amount_minor: int) -> int:
    """What `payout` gives back when `amount_minor` of the payment goes back in all:
    the same fraction of its transfer, rounded down (the platform absorbs the rest).

    Computed on running totals, never per refund, so refunding a payment in
    pieces -- even a cent at a time -- takes back exactly what refunding it at
    once would, and a full refund takes every transfer back whole.
    """
    return amount_minor * payout.amount_minor // payment.amount_minor


def clawback_parts(session: Session, payment: JobPayment, refunded_minor: int
                   ) -> list[tuple[Payout, int]]:
    """What each payout gives back now that `refunded_minor` of the payment is refunded
    in all: its share of that total minus what its reversals already took."""
    payouts = _payouts_of(session, payment)
    if not payouts:
        return []
    taken = dict(session.exec(select(PayoutReversal.payout_id,
                                     func.sum(PayoutReversal.amount_minor))
                              .where(col(PayoutReversal.payout_id).in_([p.id for p in payouts]))
                              .group_by(col(PayoutReversal.payout_id))).all())
    return [(p, share_of(p, payment, refunded_minor) - int(taken.get(p.id or 0) or 0))
            for p in payouts]


def hold_parts(session: Session, payment: JobPayment, amount_minor: int
               ) -> list[tuple[Payout, int]]:
    """What each payout's party has held for a dispute of `amount_minor`."""
    return [(p, share_of(p, payment, amount_minor)) for p in _payouts_of(session, payment)]


def refund(session: Session, actor: User, job_id: int, amount_minor: int,
           gateway: RefundGateway, now: datetime, request_key: str | None = None
           ) -> PaymentRefund:
    """Give the customer money back; reverse the parties' transfers in proportion.

    Only once every transfer is made, so there is one rule: each party gives
    back the same fraction of what it received.  Raises GatewayError when
    Stripe refused (nothing refunded) or did not answer (retried for you).
    """
    member = acting_member(session, actor)
    job, contract = contract_for(session, actor, job_id)
    if member.id not in (contract_lead(session, contract), job.poster_member_id):
        raise Forbidden("refund_not_allowed", N_("Only the poster or the business that leads "
                                                 "the contract can refund the customer."))
    payment = locked_payment(session, JobPayment.contract_id == contract.id)
    if payment is None or payment.status != PaymentStatus.PAID or not payment.payment_intent_id:
        raise Conflict("not_paid", N_("There is no card payment to refund for this job."))
    key = (request_key or "").strip()[:64] or None
    if key is not None:
        again = session.exec(select(PaymentRefund).where(
            PaymentRefund.payment_id == payment.id, PaymentRefund.request_key == key)).first()
        if again is not None:  # the same form sent twice: one refund, and its answer
            session.rollback()
            if again.status == RefundStatus.FAILED:
                raise GatewayError(again.failure_reason)
            if again.status == RefundStatus.PENDING:  # the first is still being asked
                raise GatewayError(again.failure_reason or "pending", definite=False)
            return again
    payouts = session.exec(select(Payout.status).where(Payout.contract_id == contract.id)).all()
    if not payouts or any(status != PayoutStatus.PAID for status in payouts):
        raise Conflict("transfers_pending", N_("Refunds are possible once the job is confirmed "
                                               "and every share has been transferred."))
    left = payment.amount_minor - payment.refunded_minor
    if not 0 < amount_minor <= left:
        message = N_("Refund an amount above zero and at most what is left of the payment.")
        raise ValidationError("invalid_refund", message, fields={"amount": message})
    assert payment.id is not None
    row = PaymentRefund(payment_id=payment.id, amount_minor=amount_minor, request_key=key,
                        created_by_id=actor.id, created_at=now)
    session.add(row)
    payment.refunded_minor += amount_minor
    session.add(payment)
    try:
        session.commit()
    except IntegrityError:  # the same form's twin won the race for its key
        session.rollback()
        twin = session.exec(select(PaymentRefund).where(
            PaymentRefund.payment_id == payment.id, PaymentRefund.request_key == key)).one()
        return twin
    ask_stripe(session, gateway, row, payment.payment_intent_id, now)
    for reversal, payout in session.exec(select(PayoutReversal, Payout).join(
            Payout, col(Payout.id) == PayoutReversal.payout_id)
            .where(PayoutReversal.refund_id == row.id).order_by(col(PayoutReversal.id))).all():
        _reverse(session, gateway, reversal, payout, now)  # a refusal stays for the scheduler
    return row


def ask_stripe(session: Session, gateway: RefundGateway, row: PaymentRefund,
               payment_intent_id: str, now: datetime) -> None:
    """Ask Stripe for a pending refund, with its own key; record the answer."""
    try:
        refund_id = gateway.refund(f"refund-{row.id}", payment_intent_id, row.amount_minor)
    except GatewayError as error:
        if error.definite:
            _refused(session, gateway, row, payment_intent_id, error.reason, now)
        log.warning("refund %s not made by Stripe (definite=%s): %s", row.id, error.definite,
                    error.reason)
        raise
    done = session.exec(update(PaymentRefund).where(
        col(PaymentRefund.id) == row.id, col(PaymentRefund.status) == RefundStatus.PENDING)
        .values(status=RefundStatus.SUCCEEDED.value, stripe_refund_id=refund_id))
    if done.rowcount == 1:
        apply_refund(session, id_of(row), now)
    session.commit()
    session.refresh(row)
    log.info("refund %s made as %s", row.id, refund_id)


def _refused(session: Session, gateway: RefundGateway, row: PaymentRefund,
             payment_intent_id: str, reason: str, now: datetime) -> None:
    """Stripe refused: nothing was refunded, so the reserved amount is free again.

    While it was reserved, a refund made in the dashboard meanwhile looked like
    this one (`charge.refunded` counts both), so Stripe's total is read again
    and what it refunded beyond ours is recorded now.
    """
    failed = session.exec(update(PaymentRefund).where(
        col(PaymentRefund.id) == row.id, col(PaymentRefund.status) == RefundStatus.PENDING)
        .values(status=RefundStatus.FAILED.value, failure_reason=reason[:300]))
    if failed.rowcount == 1:
        session.execute(update(JobPayment).where(col(JobPayment.id) == row.payment_id).values(
            refunded_minor=JobPayment.refunded_minor - row.amount_minor))
    session.commit()
    try:
        total = gateway.refunded_total(payment_intent_id)
    except GatewayError as error:  # the next charge.refunded event still reconciles it
        log.warning("refunded total of payment %s not read: %s", row.payment_id, error.reason)
        return
    payment = locked_payment(session, col(JobPayment.id) == row.payment_id)
    if payment is not None:
        _record_beyond(session, payment, total, "", now)
    session.commit()


def charge_refunded(session: Session, charge: Mapping[str, Any], now: datetime) -> bool:
    """Webhook: the charge's refunds changed; record what the dashboard refunded.

    False (nothing done) while no payment of ours has the charge's payment intent:
    the event is parked until one has.
    """
    intent = charge.get("payment_intent")
    payment = locked_payment(session, JobPayment.payment_intent_id == intent) if intent else None
    if payment is None:
        log.info("charge.refunded for unknown charge %s (payment intent %s)", charge.get("id"),
                 intent)
        return False
    payment.charge_id = payment.charge_id or charge.get("id")
    session.add(payment)
    _record_beyond(session, payment, int(charge.get("amount_refunded") or 0),
                   _latest_refund_id(charge), now)
    return True


def _record_beyond(session: Session, payment: JobPayment, stripe_total: int, refund_id: str,
                   now: datetime) -> None:
    """Record what Stripe refunded beyond what we hold as refunded (made or being made)
    as one dashboard refund; under the payment's lock, so once however often asked."""
    beyond = min(stripe_total, payment.amount_minor) - payment.refunded_minor
    if beyond <= 0:  # our own refunds, or an older state of the charge
        return
    assert payment.id is not None
    row = PaymentRefund(payment_id=payment.id, amount_minor=beyond, origin="dashboard",
                        status=RefundStatus.SUCCEEDED.value, created_at=now,
                        stripe_refund_id=refund_id)
    session.add(row)
    payment.refunded_minor += beyond
    session.add(payment)
    session.flush()
    apply_refund(session, id_of(row), now)
    log.info("dashboard refund of %s recorded for payment %s", beyond, payment.id)


def _latest_refund_id(charge: Mapping[str, Any]) -> str:
    refunds = charge.get("refunds") or {}
    data = refunds.get("data") if isinstance(refunds, Mapping) else None
    return str(data[0].get("id", ""))[:255] if data else ""


def apply_refund(session: Session, refund_id: int, now: datetime) -> bool:
    """Write a standing refund's entries and reversal rows once; False until payouts exist.

    Part of the caller's transaction, under the payment's lock.
    """
    row = session.get(PaymentRefund, refund_id)
    assert row is not None
    payment = locked_payment(session, col(JobPayment.id) == row.payment_id)
    assert payment is not None
    if not _payouts_of(session, payment):  # the scheduler applies it once payouts exist
        return False
    applied_before = session.exec(select(func.coalesce(func.sum(PaymentRefund.amount_minor), 0))
                                  .where(PaymentRefund.payment_id == payment.id,
                                         col(PaymentRefund.applied).is_(True))).one()
    parts = clawback_parts(session, payment, int(applied_before) + row.amount_minor)
    claimed = session.exec(update(PaymentRefund).where(
        col(PaymentRefund.id) == refund_id, col(PaymentRefund.applied).is_(False),
        col(PaymentRefund.status) == RefundStatus.SUCCEEDED).values(applied=True))
    if claimed.rowcount != 1:
        return False
    contract = session.get(JobContract, payment.contract_id)
    assert contract is not None
    cluster = session.get(Cluster, contract.cluster_id)
    assert cluster is not None
    back: set[int] = set()
    for payout, part in parts:  # entries follow when each reversal is made
        if part > 0:
            assert payout.id is not None
            session.add(PayoutReversal(refund_id=refund_id, payout_id=payout.id,
                                       amount_minor=part, updated_at=now))
            back.add(payout.member_id)
    job = session.get(OverflowJob, contract.job_id)
    assert job is not None
    told: list[User | Addressee] = [*active_users_of(session, sorted(back))]
    if row.origin == "dashboard":
        told += coordinators_of(session, id_of(cluster))
    events.notify(session, told, "payment.refunded",
                  N_("The customer of %(title)s was refunded part of the payment; your "
                     "transfer was reduced in proportion."),
                  now=now, params={"title": job.title}, payload={"id": job.id},
                  link=f"/jobs/{job.id}")
    return True


def coordinators_of(session: Session, cluster_id: int) -> list[User]:
    """The people told of money the platform handles for everyone (refunds, disputes)."""
    return list(session.exec(select(User).where(User.cluster_id == cluster_id,
                                                User.role == Role.COORDINATOR,
                                                col(User.active).is_(True))))


def execute_due_reversals(session: Session, gateway: RefundGateway, now: datetime) -> int:
    """Scheduler: send every reversal not yet agreed by Stripe whose transfer is made."""
    done = 0
    due = session.exec(select(PayoutReversal, Payout).join(
        Payout, col(Payout.id) == PayoutReversal.payout_id).where(
        col(PayoutReversal.status).in_((PayoutStatus.PENDING.value, PayoutStatus.FAILED.value)),
        Payout.status == PayoutStatus.PAID).order_by(col(PayoutReversal.id))).all()
    for reversal, payout in due:
        ids = (reversal.id, reversal.refund_id, payout.id)
        try:
            done += _reverse(session, gateway, reversal, payout, now)
        except Exception:  # the others still go; this one is retried under its key
            session.rollback()
            log.exception("reversal %s (refund %s, payout %s) not recorded; retried at the "
                          "next sweep", *ids)
    return done


def _reverse(session: Session, gateway: RefundGateway, reversal: PayoutReversal,
             payout: Payout, now: datetime) -> int:
    try:
        reversal_id = gateway.reverse_transfer(
            f"reversal-{reversal.id}-try-{reversal.attempts}", payout.transfer_id or "",
            reversal.amount_minor)
    except GatewayError as error:
        log.warning("reversal %s of payout %s not made: %s", reversal.id, payout.id,
                    error.reason)
        values: dict[str, Any] = {"status": PayoutStatus.FAILED.value,
                                  "failure_reason": error.reason[:300], "updated_at": now}
        if error.definite:  # Stripe keeps a refusal under its key: the next try needs a new one
            values["attempts"] = reversal.attempts + 1
        session.execute(update(PayoutReversal).where(
            col(PayoutReversal.id) == reversal.id,
            col(PayoutReversal.status) != PayoutStatus.PAID).values(values))
        session.commit()
        return 0
    moved = session.exec(update(PayoutReversal).where(
        col(PayoutReversal.id) == reversal.id, col(PayoutReversal.status) != PayoutStatus.PAID)
        .values(status=PayoutStatus.PAID.value, reversal_id=reversal_id, failure_reason="",
                updated_at=now))
    if moved.rowcount != 1:
        session.rollback()
        return 0
    session.execute(update(Payout).where(col(Payout.id) == payout.id).values(
        reversed_minor=Payout.reversed_minor + reversal.amount_minor))
    contract = session.get(JobContract, payout.contract_id)
    cluster = session.get(Cluster, contract.cluster_id) if contract else None
    assert cluster is not None
    # what the party gave back of its share, and the reversal that took it: net zero,
    # in one month, so a month approved while a reversal waited does not collect it too
    record(session, cluster, EntrySource.JOB_REFUND, id_of(reversal), payout.member_id, PLATFORM,
           reversal.amount_minor, now, currency=payout.currency)
    record(session, cluster, EntrySource.REVERSAL, id_of(reversal), PLATFORM, payout.member_id,
           reversal.amount_minor, now, memo=reversal_id, currency=payout.currency)
    session.commit()
    return 1


def execute_due_refunds(session: Session, gateway: RefundGateway, now: datetime) -> int:
    """Scheduler: ask again for refunds whose answer was lost; apply standing ones."""
    done = 0
    pending = session.exec(select(PaymentRefund, JobPayment).join(
        JobPayment, col(JobPayment.id) == PaymentRefund.payment_id).where(
        PaymentRefund.status == RefundStatus.PENDING,
        col(PaymentRefund.created_at) < now - RETRY_AFTER)).all()
    for row, payment in pending:
        try:
            ask_stripe(session, gateway, row, payment.payment_intent_id or "", now)
            done += 1
        except GatewayError:
            continue
    waiting = session.exec(select(PaymentRefund.id).where(
        PaymentRefund.status == RefundStatus.SUCCEEDED, col(PaymentRefund.applied).is_(False))
        ).all()
    for refund_id in waiting:  # a dashboard refund made before the payouts were queued
        done += int(apply_refund(session, stored_id(refund_id), now))
        session.commit()
    return done


def failed_reversals(session: Session, cluster_id: int) -> list[PayoutReversal]:
    """Reversals Stripe has not agreed to yet, for the coordinator to see."""
    return list(session.exec(select(PayoutReversal).join(
        Payout, col(Payout.id) == PayoutReversal.payout_id).join(
        JobContract, col(JobContract.id) == Payout.contract_id).where(
        JobContract.cluster_id == cluster_id, PayoutReversal.status == PayoutStatus.FAILED)
        .order_by(col(PayoutReversal.id))))

