"""Stripe mode: the customer pays the platform, the platform pays each party its share.

1. The lead party asks for the customer's payment: a Checkout Session on the
   platform's account, `transfer_group` = the contract.  The payment counts
   only when Stripe's `checkout.session.completed` webhook says it is paid --
   never because a browser came back from the redirect.
2. Once the job is both confirmed and paid (whichever comes last), the value
   minus referral and platform fees is split by the frozen shares: one Payout
   row per party's share (and the poster's referral fee) is queued.
3. The scheduler executes queued payouts, each drawing on the job's charge
   (`source_transaction`).  When Stripe makes one, what the platform owed the
   party and the payout that settled it are written together, in one month,
   so a month approved in between never pays the share a second time through
   its settlement transfer.  The idempotency key is the payout
   id plus the number of definite refusals so far: a crash or timeout between
   our write and Stripe's answer retries with the same key and gets the same
   transfer back (never a second one); after Stripe refuses, the next attempt
   is a new request, and the refusal's reason is shown to the coordinator.
4. Refunds and disputes (`refunds.py`, `disputes.py`) take the parties' parts
   back in proportion, with exact cents; the platform absorbs its fee's part.

Delayed payment methods (bank debits) complete the session "unpaid" first: the
payment is processing until `async_payment_succeeded` (paid, as above) or
`async_payment_failed` (the lead is told and may ask for a new payment, under
a new idempotency key).  A payment's state only moves forward, so a late or
replayed event cannot move it back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import update
from sqlmodel import Session, col, select

from marketplace import events
from marketplace.clusters.models import Cluster, User
from marketplace.clusters.service import acting_member, active_users_of
from marketplace.errors import N_, Conflict, Forbidden
from marketplace.jobs.models import ContractParty, JobContract, JobStatus, OverflowJob
from marketplace.jobs.service import get_job
from marketplace.ledger.contracts import contract_lead
from marketplace.ledger.models import (
    PLATFORM,
    ConnectedAccount,
    EntrySource,
    JobPayment,
    LedgerEntry,
    PaymentStatus,
    Payout,
    PayoutStatus,
    Settlement,
    SettlementTransfer,
    entry_key,
)
from marketplace.ledger.service import record
from marketplace.ledger.stripe_gateway import GatewayError
from marketplace.money import allocate, apply_basis_points
from marketplace.persisted import id_of
from marketplace.rows import add_once

log = logging.getLogger(__name__)
#: Our own reason for a payout that waits (Stripe's refusals are kept as Stripe words them).
NOT_ONBOARDED = N_("The member has not finished setting up payouts with Stripe.")
WAITING_FOR_CHARGE = N_("Waiting for Stripe to confirm the customer's charge.")


class PaymentGateway(Protocol):
    def create_checkout(self, contract_id: int, amount_minor: int, currency: str, title: str,
                        success_url: str, cancel_url: str, attempt: int = 0
                        ) -> tuple[str, str]: ...

    def transfer(self, key: str, amount_minor: int, currency: str, destination: str,
                 group: str, source_transaction: str | None = None) -> str: ...

    def latest_charge(self, payment_intent_id: str) -> str | None: ...

    def reverse_transfer(self, key: str, transfer_id: str, amount_minor: int) -> str: ...

    def refund(self, key: str, payment_intent_id: str, amount_minor: int) -> str: ...


def payment_of(session: Session, contract_id: int) -> JobPayment | None:
    """The customer's payment for a contract, if one was asked for."""
    return session.exec(select(JobPayment).where(JobPayment.contract_id == contract_id)).first()


def locked_payment(session: Session, *where: Any) -> JobPayment | None:
    """The payment matching `where`, row-locked until commit and read fresh.

    Every read-check-write of a payment's money (refunds, disputes, the paid
    mark) goes through here, so two requests at once on PostgreSQL queue
    instead of both reading the same "left to refund".
    """
    return session.exec(select(JobPayment).where(*where).with_for_update()
                        .execution_options(populate_existing=True)).first()


def contract_for(session: Session, actor: User, job_id: int) -> tuple[OverflowJob, JobContract]:
    job = get_job(session, actor, job_id)
    contract = session.exec(select(JobContract).where(JobContract.job_id == job_id)).first()
    if contract is None:
        raise Conflict("no_contract", N_("The job has no contract yet: it must be claimed or "
                                         "awarded first."))
    return job, contract


def contract_currency(session: Session, actor: User, job_id: int) -> str:
    """The currency of a job's contract (to read an amount typed for it)."""
    return contract_for(session, actor, job_id)[1].currency


def request_payment(session: Session, actor: User, job_id: int, gateway: PaymentGateway,
                    success_url: str, cancel_url: str, now: datetime) -> JobPayment:
    """The lead party gets a Stripe Checkout link to send to its customer (made once)."""
    member = acting_member(session, actor)
    job, contract = contract_for(session, actor, job_id)
    if contract_lead(session, contract) != member.id:
        raise Forbidden("lead_only", N_("Only the business that leads the contract asks the "
                                        "customer to pay."))
    existing = payment_of(session, id_of(contract))
    if existing is not None and existing.status != PaymentStatus.FAILED:
        return existing
    if existing is None and job.status == JobStatus.CONFIRMED:
        raise Conflict("settled_offline", N_("This job was confirmed before a card payment "
                                             "was asked for; its money goes through the "
                                             "monthly settlement."))
    attempt = existing.attempt + 1 if existing is not None else 0
    session_id, url = gateway.create_checkout(id_of(contract), contract.value_minor,
                                              contract.currency, job.title, success_url,
                                              cancel_url, attempt)
    if existing is not None:  # the delayed payment failed: a new session, once
        session.execute(update(JobPayment).where(
            col(JobPayment.id) == existing.id, col(JobPayment.status) == PaymentStatus.FAILED,
            col(JobPayment.attempt) == existing.attempt).values(
            checkout_session_id=session_id, checkout_url=url, attempt=attempt,
            status=PaymentStatus.OPEN.value, payment_intent_id=None, charge_id=None))
        session.commit()
        session.refresh(existing)
        return existing
    payment = JobPayment(contract_id=id_of(contract), checkout_session_id=session_id,
                         checkout_url=url, amount_minor=contract.value_minor,
                         currency=contract.currency, created_at=now)
    # a second click may have stored the same (idempotent) checkout session first
    contract_id = payment.contract_id
    return add_once(session, payment, lambda: payment_of(session, contract_id))


def checkout_event(session: Session, event_type: str, data: Mapping[str, Any],
                   now: datetime) -> bool:
    """Webhook: a Checkout Session completed, or its delayed payment cleared or failed.

    False (nothing done) for a session we hold no payment for (yet): the event is
    parked until one appears.
    """
    payment = session.exec(select(JobPayment).where(
        JobPayment.checkout_session_id == data.get("id"))).first()
    if payment is None:
        log.info("%s for unknown session %s", event_type, data.get("id"))
        return False
    if event_type == "checkout.session.async_payment_failed":
        _delayed_payment_failed(session, payment, now)
    elif data.get("payment_status") in ("paid", "no_payment_required"):
        _paid(session, payment, data, now)
    elif event_type == "checkout.session.completed":  # submitted, not cleared yet
        session.execute(update(JobPayment).where(
            col(JobPayment.id) == payment.id, col(JobPayment.status) == PaymentStatus.OPEN)
            .values(status=PaymentStatus.PROCESSING.value,
                    payment_intent_id=data.get("payment_intent")))
    return True


def _delayed_payment_failed(session: Session, payment: JobPayment, now: datetime) -> None:
    failed = session.exec(update(JobPayment).where(
        col(JobPayment.id) == payment.id,
        col(JobPayment.status).in_((PaymentStatus.OPEN, PaymentStatus.PROCESSING)))
        .values(status=PaymentStatus.FAILED.value))
    if failed.rowcount != 1:
        return
    contract = session.get(JobContract, payment.contract_id)
    assert contract is not None
    job = session.get(OverflowJob, contract.job_id)
    assert job is not None
    events.notify(session, active_users_of(session, [contract_lead(session, contract)]),
                  "payment.failed",
                  N_("The customer's bank payment for %(title)s failed. Ask the customer to "
                     "pay again from the job page."),
                  now=now, params={"title": job.title}, payload={"id": job.id},
                  link=f"/jobs/{job.id}")


def _paid(session: Session, payment: JobPayment, data: Mapping[str, Any], now: datetime
          ) -> None:
    """Record the payment once; pay out if the job is confirmed."""
    if (data.get("amount_total"), str(data.get("currency", "")).upper()) != (
            payment.amount_minor, payment.currency):
        log.warning("checkout session %s paid %s %s, expected %s %s; not recorded",
                    payment.checkout_session_id, data.get("amount_total"),
                    data.get("currency"), payment.amount_minor, payment.currency)
        return
    paid = session.exec(
        update(JobPayment).where(col(JobPayment.id) == payment.id,
                                 col(JobPayment.status).in_((PaymentStatus.OPEN,
                                                             PaymentStatus.PROCESSING)))
        .values(status=PaymentStatus.PAID.value, paid_at=now,
                payment_intent_id=data.get("payment_intent")))
    if paid.rowcount != 1:
        return
    contract = session.get(JobContract, payment.contract_id)
    assert contract is not None
    job = session.get(OverflowJob, contract.job_id)
    if job is not None and job.status == JobStatus.CONFIRMED:
        queue_payouts(session, contract, now)


def queue_payouts(session: Session, contract: JobContract, now: datetime) -> list[Payout]:
    """Confirmed and paid: one payout for each party's share and the referral fee.

    Part of the caller's transaction; the payouts' unique key makes a second
    call (the webhook and the confirmation racing) write nothing.  The ledger
    entries are written when the transfer is made, together with the payout
    entry that settles them, in the same month: a month approved meanwhile
    must not also pay the share through its settlement transfer.
    """
    cluster = session.get(Cluster, contract.cluster_id)
    assert cluster is not None and contract.id is not None
    if session.exec(select(Payout.id).where(Payout.contract_id == contract.id)).first():
        return []
    platform_fee = apply_basis_points(contract.value_minor, contract.platform_fee_bp)
    remaining = contract.value_minor - contract.referral_fee_minor - platform_fee
    shares = {p.member_id: p.share_bp for p in session.exec(
        select(ContractParty).where(ContractParty.contract_id == contract.id))}
    owed: dict[tuple[int, str], int] = {}
    members = sorted(shares)
    for member_id, part in zip(members, allocate(remaining, [shares[m] for m in members]),
                               strict=True):
        owed[(member_id, "share")] = part
    owed[(contract.poster_member_id, "referral")] = contract.referral_fee_minor
    payouts = [Payout(contract_id=contract.id, member_id=member_id, kind=kind,
                      amount_minor=amount, currency=contract.currency, updated_at=now)
               for (member_id, kind), amount in sorted(owed.items()) if amount > 0]
    session.add_all(payouts)
    return payouts


def execute_due_payouts(session: Session, gateway: PaymentGateway, now: datetime) -> int:
    """Scheduler: transfer every pending or failed payout whose party can receive it."""
    done = 0
    due = session.exec(select(Payout.id, Payout.contract_id, Payout.member_id).where(
        col(Payout.status).in_((PayoutStatus.PENDING.value, PayoutStatus.FAILED.value)))
        .order_by(col(Payout.id))).all()
    for payout_id, contract_id, member_id in due:
        # Each payout in its own transactions: one that cannot be recorded is logged
        # and retried (under the same key, so Stripe gives back the same transfer)
        # while the others are made.
        try:
            payout = session.get(Payout, payout_id)
            if payout is not None:
                done += _execute(session, gateway, payout, now)
        except Exception:
            session.rollback()
            log.exception("payout %s (contract %s, member %s) not recorded; retried at the "
                          "next sweep", payout_id, contract_id, member_id)
    return done


def failed_payouts(session: Session, cluster_id: int) -> list[Payout]:
    """Payouts Stripe refused (or that wait for onboarding), for the coordinator to see."""
    return list(session.exec(select(Payout).join(
        JobContract, col(JobContract.id) == Payout.contract_id).where(
        JobContract.cluster_id == cluster_id, Payout.status == PayoutStatus.FAILED)
        .order_by(col(Payout.id))))


Transferable = Payout | SettlementTransfer


def _send(session: Session, gateway: PaymentGateway, row: Transferable, key: str, group: str,
          now: datetime, source: str | None = None) -> str | None:
    """Transfer `row` to its member's connected account; None (and the reason kept) if not."""
    account = session.get(ConnectedAccount, row.member_id)
    if account is None or not account.payouts_enabled:
        _fail(session, row, NOT_ONBOARDED, now, definite=False)
        return None
    try:
        return gateway.transfer(f"{key}-{row.id}-try-{row.attempts}", row.amount_minor,
                                row.currency, account.account_id, group, source)
    except GatewayError as error:
        log.warning("%s %s refused by Stripe: %s", key, row.id, error.reason)
        _fail(session, row, error.reason, now, definite=error.definite)
        return None


def _source_charge(session: Session, gateway: PaymentGateway, contract_id: int) -> str | None:
    """The job's charge, learnt from Stripe once and kept: the payouts' source."""
    payment = payment_of(session, contract_id)
    if payment is None or payment.status != PaymentStatus.PAID or not payment.payment_intent_id:
        return None
    if payment.charge_id is None:
        try:
            charge = gateway.latest_charge(payment.payment_intent_id)
        except GatewayError as error:  # asked again at the next sweep
            log.warning("charge of payment %s unknown: %s", payment.id, error.reason)
            return None
        session.execute(update(JobPayment).where(col(JobPayment.id) == payment.id)
                        .values(charge_id=charge))
        session.commit()
        return charge
    return payment.charge_id


def _fail(session: Session, row: Transferable, reason: str, now: datetime, *, definite: bool
          ) -> None:
    """Keep the reason for the coordinator; a definite refusal moves to a new key."""
    model = type(row)
    values: dict[str, Any] = {"status": PayoutStatus.FAILED.value,
                              "failure_reason": reason[:300]}
    if isinstance(row, Payout):
        values["updated_at"] = now
    if definite:
        values["attempts"] = row.attempts + 1
    session.execute(update(model).where(col(model.id) == row.id,
                                        col(model.status) != PayoutStatus.PAID).values(values))
    session.commit()


def _execute(session: Session, gateway: PaymentGateway, payout: Payout, now: datetime) -> int:
    # The charge is the transfer's source, so it must be known before the first try:
    # every retry then sends the same parameters under the same key.
    source = _source_charge(session, gateway, payout.contract_id)
    if source is None:
        _fail(session, payout, WAITING_FOR_CHARGE, now, definite=False)
        return 0
    transfer_id = _send(session, gateway, payout, "payout", f"contract-{payout.contract_id}",
                        now, source)
    if transfer_id is None:
        return 0
    moved = session.exec(
        update(Payout).where(col(Payout.id) == payout.id,
                             col(Payout.status) != PayoutStatus.PAID)
        .values(status=PayoutStatus.PAID.value, transfer_id=transfer_id, failure_reason="",
                updated_at=now))
    if moved.rowcount != 1:
        session.rollback()  # another run recorded the same (replayed) transfer
        return 0
    contract = session.get(JobContract, payout.contract_id)
    cluster = session.get(Cluster, contract.cluster_id) if contract else None
    assert cluster is not None
    # what the platform owed the party, and the transfer that paid it: net zero
    owed = EntrySource.JOB_SHARE if payout.kind == "share" else EntrySource.REFERRAL_FEE
    if _owed_written(session, owed, payout):
        log.info("payout %s: what the platform owed was written when it was queued "
                 "(before revision 0009)", payout.id)
    else:
        record(session, cluster, owed, payout.contract_id, PLATFORM, payout.member_id,
               payout.amount_minor, now, currency=payout.currency)
    record(session, cluster, EntrySource.PAYOUT, id_of(payout), payout.member_id, PLATFORM,
           payout.amount_minor, now, memo=transfer_id, currency=payout.currency)
    session.commit()
    log.info("payout %s paid as %s", payout.id, transfer_id)
    return 1


def _owed_written(session: Session, owed: EntrySource, payout: Payout) -> bool:
    """Whether what the platform owes for `payout` is in the ledger already: revision
    0008's code wrote it when it queued the payout, today's when it makes the transfer."""
    key = entry_key(owed.value, payout.contract_id, PLATFORM, payout.member_id)
    return session.exec(select(LedgerEntry.id).where(LedgerEntry.entry_key == key)
                        ).first() is not None


def execute_due_settlement_transfers(session: Session, gateway: PaymentGateway,
                                     now: datetime) -> int:
    """Scheduler: pay approved months' nets to members through Stripe (pending or failed)."""
    done = 0
    due = session.exec(select(SettlementTransfer, Settlement).join(
        Settlement, col(Settlement.id) == SettlementTransfer.settlement_id).where(
        SettlementTransfer.method == "stripe",
        col(SettlementTransfer.status).in_((PayoutStatus.PENDING.value,
                                            PayoutStatus.FAILED.value)))
        .order_by(col(SettlementTransfer.id))).all()
    for transfer, month in due:
        transfer_id = _send(session, gateway, transfer, "settlement",
                            f"settlement-{month.month}", now)
        if transfer_id is None:
            continue
        moved = session.exec(
            update(SettlementTransfer).where(col(SettlementTransfer.id) == transfer.id,
                                             col(SettlementTransfer.status) != "paid")
            .values(status=PayoutStatus.PAID.value, reference=transfer_id, failure_reason=""))
        session.commit()
        done += moved.rowcount
    return done
