"""Stripe mode: the customer pays the platform, the platform pays each party its share.

1. The lead party asks for the customer's payment: a Checkout Session on the
   platform's account, `transfer_group` = the contract.  The payment counts
   only when Stripe's `checkout.session.completed` webhook says it is paid --
   never because a browser came back from the redirect.
2. Once the job is both confirmed and paid (whichever comes last), the value
   minus referral and platform fees is split by the frozen shares and written
   as what the platform owes each party (and the poster its referral fee), and
   one Payout row per transfer is queued -- all in one transaction.
3. The scheduler executes queued payouts.  The idempotency key is the payout
   id plus the number of definite refusals so far: a crash or timeout between
   our write and Stripe's answer retries with the same key and gets the same
   transfer back (never a second one); after Stripe refuses, the next attempt
   is a new request, and the refusal's reason is shown to the coordinator.
4. A refund gives the customer money back and reverses the paid transfers in
   proportion, with exact cents; the platform absorbs its fee's part.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from marketplace import events
from marketplace.clusters.models import Cluster, User
from marketplace.clusters.service import acting_member, active_users_of
from marketplace.errors import N_, Conflict, Forbidden, ValidationError, not_found
from marketplace.jobs.models import ContractParty, JobContract, JobStatus, OverflowJob
from marketplace.ledger.contracts import contract_lead
from marketplace.ledger.models import (
    PLATFORM,
    ConnectedAccount,
    EntrySource,
    JobPayment,
    PaymentRefund,
    PaymentStatus,
    Payout,
    PayoutStatus,
    Settlement,
    SettlementTransfer,
)
from marketplace.ledger.service import record, record_split
from marketplace.ledger.stripe_gateway import GatewayError
from marketplace.money import allocate, apply_basis_points, split_by_weights

log = logging.getLogger(__name__)
#: Our own reason for a payout that waits (Stripe's refusals are kept as Stripe words them).
NOT_ONBOARDED = N_("The member has not finished setting up payouts with Stripe.")


class PaymentGateway(Protocol):
    def create_checkout(self, contract_id: int, amount_minor: int, currency: str, title: str,
                        success_url: str, cancel_url: str) -> tuple[str, str]: ...

    def transfer(self, key: str, amount_minor: int, currency: str, destination: str,
                 group: str) -> str: ...

    def reverse_transfer(self, key: str, transfer_id: str, amount_minor: int) -> str: ...

    def refund(self, key: str, payment_intent_id: str, amount_minor: int) -> str: ...


def payment_of(session: Session, contract_id: int) -> JobPayment | None:
    """The customer's payment for a contract, if one was asked for."""
    return session.exec(select(JobPayment).where(JobPayment.contract_id == contract_id)).first()


def _contract_for(session: Session, actor: User, job_id: int) -> tuple[OverflowJob, JobContract]:
    job = session.get(OverflowJob, job_id)
    if job is None or job.cluster_id != actor.cluster_id:
        raise not_found()
    contract = session.exec(select(JobContract).where(JobContract.job_id == job_id)).first()
    if contract is None:
        raise Conflict("no_contract", N_("The job has no contract yet: it must be claimed or "
                                         "awarded first."))
    return job, contract


def contract_currency(session: Session, actor: User, job_id: int) -> str:
    """The currency of a job's contract (to read an amount typed for it)."""
    return _contract_for(session, actor, job_id)[1].currency


def request_payment(session: Session, actor: User, job_id: int, gateway: PaymentGateway,
                    success_url: str, cancel_url: str, now: datetime) -> JobPayment:
    """The lead party gets a Stripe Checkout link to send to its customer (made once)."""
    member = acting_member(session, actor)
    job, contract = _contract_for(session, actor, job_id)
    if contract_lead(session, contract) != member.id:
        raise Forbidden("lead_only", N_("Only the business that leads the contract asks the "
                                        "customer to pay."))
    existing = payment_of(session, contract.id)  # type: ignore[arg-type]
    if existing is not None:
        return existing
    if job.status == JobStatus.CONFIRMED:
        raise Conflict("settled_offline", N_("This job was confirmed before a card payment "
                                             "was asked for; its money goes through the "
                                             "monthly settlement."))
    session_id, url = gateway.create_checkout(contract.id, contract.value_minor,  # type: ignore[arg-type]
                                              contract.currency, job.title, success_url,
                                              cancel_url)
    payment = JobPayment(contract_id=contract.id, checkout_session_id=session_id,
                         checkout_url=url, amount_minor=contract.value_minor,
                         currency=contract.currency, created_at=now)
    session.add(payment)
    try:
        session.commit()
    except IntegrityError:  # a second click made the same (idempotent) session
        session.rollback()
        found = payment_of(session, contract.id)  # type: ignore[arg-type]
        assert found is not None
        return found
    return payment


def checkout_completed(session: Session, data: Mapping[str, Any], now: datetime) -> None:
    """Webhook: the customer paid.  Record it once; pay out if the job is confirmed."""
    if data.get("payment_status") != "paid":
        return
    payment = session.exec(select(JobPayment).where(
        JobPayment.checkout_session_id == data.get("id"))).first()
    if payment is None:
        log.info("checkout.session.completed for unknown session %s ignored", data.get("id"))
        return
    if (data.get("amount_total"), str(data.get("currency", "")).upper()) != (
            payment.amount_minor, payment.currency):
        log.warning("checkout session %s paid %s %s, expected %s %s; not recorded",
                    payment.checkout_session_id, data.get("amount_total"),
                    data.get("currency"), payment.amount_minor, payment.currency)
        return
    paid = session.execute(
        update(JobPayment).where(col(JobPayment.id) == payment.id,
                                 col(JobPayment.status) == PaymentStatus.OPEN)
        .values(status=PaymentStatus.PAID.value, paid_at=now,
                payment_intent_id=data.get("payment_intent")))
    if paid.rowcount != 1:  # type: ignore[attr-defined]
        return
    contract = session.get(JobContract, payment.contract_id)
    assert contract is not None
    job = session.get(OverflowJob, contract.job_id)
    if job is not None and job.status == JobStatus.CONFIRMED:
        queue_payouts(session, contract, now)


def queue_payouts(session: Session, contract: JobContract, now: datetime) -> list[Payout]:
    """Confirmed and paid: what the platform owes each party, and one payout for each.

    Part of the caller's transaction; the ledger's and the payouts' unique keys
    make a second call (the webhook and the confirmation racing) write nothing.
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
    record_split(session, cluster, EntrySource.JOB_SHARE, contract.id, PLATFORM,  # type: ignore[arg-type]
                 remaining, shares, now)
    record(session, cluster, EntrySource.REFERRAL_FEE, contract.id, PLATFORM,
           contract.poster_member_id, contract.referral_fee_minor, now)
    payouts = [Payout(contract_id=contract.id, member_id=member_id, kind=kind,
                      amount_minor=amount, currency=contract.currency, updated_at=now)
               for (member_id, kind), amount in sorted(owed.items()) if amount > 0]
    session.add_all(payouts)
    return payouts


_installed_gateway: PaymentGateway | None = None


def install_gateway(gateway: PaymentGateway | None) -> None:
    """The gateway the scheduler's payout sweep uses in this process (None: offline mode)."""
    global _installed_gateway
    _installed_gateway = gateway


def execute_installed_payouts(session: Session, now: datetime) -> int:
    """Scheduler task: job payouts and settlement transfers, with the installed gateway."""
    if _installed_gateway is None:
        return 0
    return (execute_due_payouts(session, _installed_gateway, now)
            + execute_due_settlement_transfers(session, _installed_gateway, now))


def execute_due_payouts(session: Session, gateway: PaymentGateway, now: datetime) -> int:
    """Scheduler: transfer every pending or failed payout whose party can receive it."""
    done = 0
    due = session.exec(select(Payout).where(col(Payout.status).in_(
        (PayoutStatus.PENDING.value, PayoutStatus.FAILED.value))).order_by(col(Payout.id))).all()
    for payout in due:
        done += _execute(session, gateway, payout, now)
    return done


def failed_payouts(session: Session, cluster_id: int) -> list[Payout]:
    """Payouts Stripe refused (or that wait for onboarding), for the coordinator to see."""
    return list(session.exec(select(Payout).join(
        JobContract, col(JobContract.id) == Payout.contract_id).where(
        JobContract.cluster_id == cluster_id, Payout.status == PayoutStatus.FAILED)
        .order_by(col(Payout.id))))


Transferable = Payout | SettlementTransfer


def _send(session: Session, gateway: PaymentGateway, row: Transferable, key: str, group: str,
          now: datetime) -> str | None:
    """Transfer `row` to its member's connected account; None (and the reason kept) if not."""
    account = session.get(ConnectedAccount, row.member_id)
    if account is None or not account.payouts_enabled:
        _fail(session, row, NOT_ONBOARDED, now, definite=False)
        return None
    try:
        return gateway.transfer(f"{key}-{row.id}-try-{row.attempts}", row.amount_minor,
                                row.currency, account.account_id, group)
    except GatewayError as error:
        log.warning("%s %s refused by Stripe: %s", key, row.id, error.reason)
        _fail(session, row, error.reason, now, definite=True)
        return None


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
    transfer_id = _send(session, gateway, payout, "payout", f"contract-{payout.contract_id}",
                        now)
    if transfer_id is None:
        return 0
    moved = session.execute(
        update(Payout).where(col(Payout.id) == payout.id,
                             col(Payout.status) != PayoutStatus.PAID)
        .values(status=PayoutStatus.PAID.value, transfer_id=transfer_id, failure_reason="",
                updated_at=now))
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()  # another run recorded the same (replayed) transfer
        return 0
    contract = session.get(JobContract, payout.contract_id)
    cluster = session.get(Cluster, contract.cluster_id) if contract else None
    assert cluster is not None
    record(session, cluster, EntrySource.PAYOUT, payout.id, payout.member_id, PLATFORM,  # type: ignore[arg-type]
           payout.amount_minor, now, memo=transfer_id)
    session.commit()
    log.info("payout %s paid as %s", payout.id, transfer_id)
    return 1


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
        moved = session.execute(
            update(SettlementTransfer).where(col(SettlementTransfer.id) == transfer.id,
                                             col(SettlementTransfer.status) != "paid")
            .values(status=PayoutStatus.PAID.value, reference=transfer_id, failure_reason=""))
        session.commit()
        done += moved.rowcount  # type: ignore[attr-defined]
    return done


def refund(session: Session, actor: User, job_id: int, amount_minor: int,
           gateway: PaymentGateway, now: datetime) -> PaymentRefund:
    """Give the customer money back; reverse the parties' transfers in proportion.

    Only once every transfer is made, so there is one rule: each party gives
    back the same fraction of what it received (exact cents, largest
    remainder); the platform absorbs its fee's part.
    """
    member = acting_member(session, actor)
    job, contract = _contract_for(session, actor, job_id)
    if member.id not in (contract_lead(session, contract), job.poster_member_id):
        raise Forbidden("refund_not_allowed", N_("Only the poster or the business that leads "
                                                 "the contract can refund the customer."))
    payment = payment_of(session, contract.id)  # type: ignore[arg-type]
    if payment is None or payment.status != PaymentStatus.PAID or not payment.payment_intent_id:
        raise Conflict("not_paid", N_("There is no card payment to refund for this job."))
    payouts = list(session.exec(select(Payout).where(Payout.contract_id == contract.id)
                                .order_by(col(Payout.id))))
    if not payouts or any(p.status != PayoutStatus.PAID for p in payouts):
        raise Conflict("transfers_pending", N_("Refunds are possible once the job is confirmed "
                                               "and every share has been transferred."))
    left = payment.amount_minor - payment.refunded_minor
    if not 0 < amount_minor <= left:
        message = N_("Refund an amount above zero and at most what is left of the payment.")
        raise ValidationError("invalid_refund", message, fields={"amount": message})
    number = payment.refunded_minor  # the same refund retried gets the same keys
    refund_id = gateway.refund(f"refund-{payment.id}-{number}", payment.payment_intent_id,
                               amount_minor)
    refund_row = PaymentRefund(payment_id=payment.id, amount_minor=amount_minor,
                               stripe_refund_id=refund_id, created_by_id=actor.id,
                               created_at=now)
    session.add(refund_row)
    payment.refunded_minor += amount_minor
    session.add(payment)
    session.flush()
    transferred = sum(p.amount_minor for p in payouts)
    clawback = amount_minor * transferred // payment.amount_minor
    back: dict[int, int] = {}
    for payout, part in zip(payouts, split_by_weights(clawback, [p.amount_minor for p in payouts]),
                            strict=True):
        if part > 0:
            gateway.reverse_transfer(f"reversal-{payout.id}-{number}", payout.transfer_id or "",
                                     part)
            payout.reversed_minor += part
            session.add(payout)
            back[payout.member_id] = back.get(payout.member_id, 0) + part
    cluster = session.get(Cluster, contract.cluster_id)
    assert cluster is not None and refund_row.id is not None
    for member_id, part in sorted(back.items()):
        # the party's claim shrinks, and the reversal took that cash back: net zero
        record(session, cluster, EntrySource.JOB_REFUND, refund_row.id, member_id, PLATFORM,
               part, now)
        record(session, cluster, EntrySource.REVERSAL, refund_row.id, PLATFORM, member_id,
               part, now)
    events.notify(session, active_users_of(session, sorted(back)), "payment.refunded",
                  N_("The customer of %(title)s was refunded part of the payment; your "
                     "transfer was reduced in proportion."),
                  now=now, params={"title": job.title}, payload={"id": job.id},
                  link=f"/jobs/{job.id}")
    session.commit()
    return refund_row
