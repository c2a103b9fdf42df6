"""Chargebacks: a customer disputes a job's card payment with its bank.

Stripe takes the disputed amount from the platform at once.  Each party's part
of it -- the same fraction of its transfer as a refund of that amount would
take -- is held: a DISPUTE_HOLD entry makes the party owe it to the platform,
so it is kept out of what the monthly settlement pays the party until the
dispute closes.  Won: a DISPUTE_RELEASE entry gives it back.  Lost: the hold
stands, as a refund would.  The coordinator and the parties are told each time.

Stripe does not promise the order of events; a dispute's state only moves
from open to closed, so a `closed` arriving before its `created` records both,
and a late `created` changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from marketplace import events
from marketplace.clusters.models import Addressee, Cluster, User
from marketplace.clusters.service import active_users_of
from marketplace.errors import N_
from marketplace.jobs.models import JobContract, OverflowJob
from marketplace.ledger.models import PLATFORM, EntrySource, JobPayment, PaymentDispute
from marketplace.ledger.payments import locked_payment
from marketplace.ledger.refunds import coordinators_of, hold_parts
from marketplace.ledger.service import record, reverse
from marketplace.persisted import id_of, stored_id

log = logging.getLogger(__name__)
_WON = {"won", "warning_closed"}  # warning_closed: an inquiry closed without a chargeback


def dispute_event(session: Session, event_type: str, dispute: Mapping[str, Any],
                  now: datetime) -> bool:
    """Webhook: charge.dispute.created / .closed (others only update Stripe's side).

    False (nothing done) while no payment of ours has the disputed charge's payment
    intent: the event is parked until one has.
    """
    intent = dispute.get("payment_intent")
    payment = locked_payment(session, JobPayment.payment_intent_id == intent) if intent else None
    if payment is None:
        log.info("%s for unknown charge %s (payment intent %s)", event_type,
                 dispute.get("charge"), intent)
        return False
    row = _dispute_row(session, payment, dispute, now)
    if row is None:
        return True
    if event_type == "charge.dispute.closed" or dispute.get("status") in (_WON | {"lost"}):
        _close(session, row, str(dispute.get("status")), now)
    return True


def _dispute_row(session: Session, payment: JobPayment, dispute: Mapping[str, Any],
                 now: datetime) -> PaymentDispute | None:
    found = session.exec(select(PaymentDispute).where(
        PaymentDispute.dispute_id == dispute.get("id"))).first()
    if found is not None:
        return found
    amount = min(int(dispute.get("amount") or 0), payment.amount_minor)
    if amount <= 0:
        return None
    assert payment.id is not None
    row = PaymentDispute(dispute_id=str(dispute.get("id")), payment_id=payment.id,
                         amount_minor=amount, opened_at=now)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # unique dispute id: recorded meanwhile (under the payment lock,
        session.rollback()  # this is only a second app instance without it)
        return None
    apply_hold(session, id_of(row), now)
    _tell(session, payment, row, N_("A customer disputed the card payment for %(title)s "
                                    "with its bank. Your part is held until the dispute "
                                    "closes."), now)
    return row


def apply_hold(session: Session, dispute_row_id: int, now: datetime) -> bool:
    """Hold each party's part once; False until the payouts exist (the scheduler retries)."""
    payment_id = session.exec(select(PaymentDispute.payment_id).where(
        PaymentDispute.id == dispute_row_id)).one()
    # The payment's lock first, as the webhook takes it: a dispute closing meanwhile
    # is then either seen closed here or sees the hold written.
    payment = locked_payment(session, col(JobPayment.id) == payment_id)
    assert payment is not None
    row = session.exec(select(PaymentDispute).where(PaymentDispute.id == dispute_row_id)
                       .execution_options(populate_existing=True)).one()
    parts = hold_parts(session, payment, row.amount_minor)
    if not parts:
        return False
    claimed = session.exec(update(PaymentDispute).where(
        col(PaymentDispute.id) == row.id, col(PaymentDispute.applied).is_(False),
        col(PaymentDispute.status) == row.status).values(applied=True))
    if claimed.rowcount != 1:
        return False
    if row.status in _WON:  # closed in our favour before anything was held
        return True
    cluster = _cluster_of(session, payment)
    held: dict[int, int] = {}
    for payout, part in parts:
        held[payout.member_id] = held.get(payout.member_id, 0) + max(part, 0)
    for member_id, part in sorted(held.items()):
        record(session, cluster, EntrySource.DISPUTE_HOLD, id_of(row), member_id, PLATFORM,
               part, now, memo=row.dispute_id, currency=payment.currency)
    return True


def _close(session: Session, row: PaymentDispute, status: str, now: datetime) -> None:
    outcome = "won" if status in _WON else "lost"
    closed = session.exec(update(PaymentDispute).where(
        col(PaymentDispute.id) == row.id, col(PaymentDispute.status) == "open")
        .values(status=outcome, closed_at=now))
    if closed.rowcount != 1:
        return
    session.refresh(row)
    payment = session.get(JobPayment, row.payment_id)
    assert payment is not None
    if outcome == "won" and row.applied:
        reverse(session, _cluster_of(session, payment), EntrySource.DISPUTE_HOLD, id_of(row),
                EntrySource.DISPUTE_RELEASE, now)
    _tell(session, payment, row,
          N_("The dispute over the card payment for %(title)s was won: your held part "
             "is released.") if outcome == "won" else
          N_("The dispute over the card payment for %(title)s was lost: the customer keeps "
             "the disputed amount and your held part is deducted."), now)


def apply_due_holds(session: Session, now: datetime) -> int:
    """Scheduler: hold the parts of disputes opened before the payouts were queued."""
    done = 0
    for row_id in session.exec(select(PaymentDispute.id).where(
            col(PaymentDispute.applied).is_(False))).all():
        done += int(apply_hold(session, stored_id(row_id), now))
        session.commit()
    return done


def open_disputes(session: Session, cluster_id: int) -> list[PaymentDispute]:
    """The cluster's disputes not closed yet, for the coordinator's page."""
    return list(session.exec(select(PaymentDispute).join(
        JobPayment, col(JobPayment.id) == PaymentDispute.payment_id).join(
        JobContract, col(JobContract.id) == JobPayment.contract_id).where(
        JobContract.cluster_id == cluster_id, PaymentDispute.status == "open")
        .order_by(col(PaymentDispute.id))))


def _cluster_of(session: Session, payment: JobPayment) -> Cluster:
    contract = session.get(JobContract, payment.contract_id)
    cluster = session.get(Cluster, contract.cluster_id) if contract else None
    assert cluster is not None
    return cluster


def _tell(session: Session, payment: JobPayment, row: PaymentDispute, message: str,
          now: datetime) -> None:
    """The parties and the cluster's coordinators."""
    contract = session.get(JobContract, payment.contract_id)
    assert contract is not None
    job = session.get(OverflowJob, contract.job_id)
    assert job is not None
    parties = {p.member_id for p, _part in hold_parts(session, payment, row.amount_minor)}
    people: list[User | Addressee] = [
        *active_users_of(session, sorted(parties | {contract.poster_member_id}))]
    people += coordinators_of(session, contract.cluster_id)
    events.notify(session, {u.id: u for u in people}.values(), "payment.disputed", message, now=now,
                  params={"title": job.title}, payload={"id": job.id}, link=f"/jobs/{job.id}")
