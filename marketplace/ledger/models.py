"""Ledger entries: who owes whom how much, why, and in which month; settlements.

Entries are never edited; a correction is a new entry (DESIGN rule 3: integer
minor units).  Each entry moves money between two accounts: a member, or the
cluster's platform account (a NULL member id), so the balances of all
accounts always sum to zero.  `entry_key` (source, source id, payer, payee) is
unique: recording the same fact twice is refused by the database, not by
hoping the caller checked first.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Integer,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from marketplace.db import UTCDateTime


class EntrySource(StrEnum):
    BOOKING = "booking"  # equipment fee, booker -> owner(s)
    BOOKING_REFUND = "booking_refund"  # a cancelled booking's fee, back to the booker
    CANCELLATION_FEE = "cancellation_fee"  # late cancellation, booker -> owner(s)
    DAMAGE_FEE = "damage_fee"  # reported at return, booker -> owner(s)
    JOB_SHARE = "job_share"  # a confirmed job: the lead -> each partner's share
    REFERRAL_FEE = "referral_fee"  # a confirmed job: the lead -> the poster
    PLATFORM_FEE = "platform_fee"  # a confirmed job: the lead -> the platform
    ADJUSTMENT = "adjustment"  # a coordinator's correction, with its reason
    # Stripe mode: the platform collected the customer's payment.
    PAYOUT = "payout"  # a transfer reached the member: settles what the platform owed it
    JOB_REFUND = "job_refund"  # the customer got money back: the member's share shrinks
    REVERSAL = "reversal"  # the platform took that part of the transfer back
    DISPUTE_HOLD = "dispute_hold"  # a customer disputes the charge: the parties' parts held
    DISPUTE_RELEASE = "dispute_release"  # the platform won the dispute: the parts released
    BUYOUT = "buyout"  # a leaving co-owner's machine share, remaining co-owners -> leaver
    # A fee of a booking for a slot after a co-owner's exit that the leaver was paid when
    # it was booked: passed on to the remaining co-owners (source_id: the booking's id).
    BOOKING_HANDOVER = "booking_handover"  # leaver -> each remaining co-owner
    BOOKING_HANDOVER_REFUND = "booking_handover_refund"  # the booking cancelled: back
    # Disputes between members (marketplace/disputes): source_id is the disputed entry's id.
    MEMBER_DISPUTE_HOLD = "member_dispute_hold"  # the disputed entry reversed while open
    MEMBER_DISPUTE_SETTLED = "member_dispute_settled"  # what the decision says it owes


#: The payer or payee id that stands for the cluster's platform account.
PLATFORM = None


class LedgerEntry(SQLModel, table=True):
    """`amount_minor` moves from the payer member to the payee member."""

    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="ledger_amount_positive"),
        CheckConstraint("payer_member_id IS NOT NULL OR payee_member_id IS NOT NULL",
                        name="ledger_one_member_at_least"),
        CheckConstraint("payer_member_id <> payee_member_id", name="ledger_two_parties"),
        UniqueConstraint("entry_key", name="uq_ledgerentry_entry_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    cluster_id: int = Field(foreign_key="cluster.id", index=True)
    source: str = Field(max_length=30)
    source_id: int
    entry_key: str = Field(max_length=80)
    payer_member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    payee_member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    amount_minor: int
    currency: str = Field(max_length=3)
    month: str = Field(max_length=7, index=True)  # YYYY-MM in the cluster's time zone
    #: The month the fact happened in when that month was already locked (shown on the
    #: statement line); empty for an entry in its own month.
    late_from: str = Field(default="", max_length=7)
    memo: str = Field(default="", max_length=300)
    created_by_id: int | None = Field(default=None, sa_column=Column(  # adjustments: who
        Integer, ForeignKey("user.id", name="fk_ledgerentry_created_by_id_user"), nullable=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


def entry_key(source: str, source_id: int, payer: int | None, payee: int | None) -> str:
    """The natural key of an entry: one fact moves money once between two accounts."""
    return f"{source}:{source_id}:{payer if payer is not None else 'p'}:" \
           f"{payee if payee is not None else 'p'}"


class SettlementStatus(StrEnum):
    DRAFT = "draft"  # the coordinator reviews it and may add adjustments
    APPROVED = "approved"  # transfers recorded; the month is locked


class Settlement(SQLModel, table=True):
    """One cluster's month, drafted on the 1st and locked by the coordinator's approval."""

    __table_args__ = (UniqueConstraint("cluster_id", "month"),)

    id: int | None = Field(default=None, primary_key=True)
    cluster_id: int = Field(foreign_key="cluster.id", index=True)
    month: str = Field(max_length=7)
    status: str = Field(default=SettlementStatus.DRAFT.value, max_length=10)
    drafted_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    approved_at: datetime | None = Field(default=None,
                                         sa_column=Column(UTCDateTime(), nullable=True))
    approved_by_id: int | None = Field(default=None, foreign_key="user.id")


class TransferDirection(StrEnum):
    TO_MEMBER = "to_member"  # the platform pays the member its net receivable
    FROM_MEMBER = "from_member"  # the member pays the platform its net payable


class SettlementTransfer(SQLModel, table=True):
    """The one transfer that settles a member's net for a month (hub and spoke)."""

    __table_args__ = (UniqueConstraint("settlement_id", "member_id"),
                      CheckConstraint("amount_minor > 0", name="transfer_amount_positive"))

    id: int | None = Field(default=None, primary_key=True)
    settlement_id: int = Field(foreign_key="settlement.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    direction: str = Field(max_length=12)
    #: A month's net sums many entries: 64-bit, as every stored sum of money is.
    amount_minor: int = Field(sa_column=Column(BigInteger(), nullable=False))
    currency: str = Field(max_length=3)
    method: str = Field(default="manual", max_length=10)  # manual (bank) | stripe
    reference: str = Field(default="", max_length=120)  # bank reference or Stripe transfer id
    #: manual ones are "recorded"; Stripe ones go pending -> paid, or failed (retried)
    status: str = Field(default="recorded", max_length=10)
    failure_reason: str = Field(default="", max_length=300)
    attempts: int = Field(default=0)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ConnectedAccount(SQLModel, table=True):
    """A member's Stripe Express account, kept current from `account.updated` webhooks."""

    member_id: int = Field(foreign_key="member.id", primary_key=True)
    account_id: str = Field(max_length=64, unique=True)
    details_submitted: bool = Field(default=False)
    payouts_enabled: bool = Field(default=False)
    #: When Stripe produced the state we hold: an older event never overwrites a newer one.
    state_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class StripeEvent(SQLModel, table=True):
    """A webhook event already processed: Stripe retries and replays, we act once.

    An event about something we do not hold yet is kept as "parked" with the
    Stripe id it waits for, and applied when that appears: an `account.updated`
    for an account whose row commits a moment after Stripe announces it
    (`acct_...`; its state is read from Stripe then), or a payment's event --
    a checkout session's (`cs_...`), a refund or dispute of a charge whose
    payment intent we have not learnt yet (`pi_...`) -- whose object is kept
    in `payload` until it is applied.
    """

    event_id: str = Field(max_length=255, primary_key=True)
    type: str = Field(max_length=100)
    status: str = Field(default="processed", max_length=10)  # processed | parked
    waits_for: str | None = Field(default=None, max_length=255, index=True)
    payload: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class PaymentStatus(StrEnum):
    OPEN = "open"  # a Checkout Session waits for the customer
    PROCESSING = "processing"  # a delayed method (bank debit) was submitted, not cleared
    PAID = "paid"  # recorded from Stripe's webhook, never from the redirect
    FAILED = "failed"  # the delayed method failed: the lead may ask for a new payment


class JobPayment(SQLModel, table=True):
    """The customer's payment for a job contract, collected on the platform's account."""

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="jobcontract.id", unique=True)
    checkout_session_id: str = Field(max_length=255, unique=True)
    checkout_url: str = Field(max_length=1000)
    amount_minor: int
    currency: str = Field(max_length=3)
    status: str = Field(default=PaymentStatus.OPEN.value, max_length=10)
    payment_intent_id: str | None = Field(default=None, max_length=255)
    charge_id: str | None = Field(default=None, max_length=255)
    #: Refunds made or being made (app and dashboard): what is left to refund is
    #: amount - refunded; changed only under the payment's row lock.
    refunded_minor: int = Field(default=0)
    #: Checkout Sessions asked for: a failed delayed payment gets a new one (a fresh key).
    attempt: int = Field(default=0)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    paid_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class PayoutStatus(StrEnum):
    PENDING = "pending"  # to transfer (again, after a failure)
    PAID = "paid"
    FAILED = "failed"  # Stripe refused; the reason is shown and the scheduler retries


class Payout(SQLModel, table=True):
    """One transfer from the platform to a party's connected account for a paid job."""

    __table_args__ = (UniqueConstraint("contract_id", "member_id", "kind"),
                      CheckConstraint("amount_minor > 0", name="payout_amount_positive"))

    id: int | None = Field(default=None, primary_key=True)
    contract_id: int = Field(foreign_key="jobcontract.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    kind: str = Field(max_length=10)  # share | referral
    amount_minor: int
    currency: str = Field(max_length=3)
    status: str = Field(default=PayoutStatus.PENDING.value, max_length=10, index=True)
    transfer_id: str | None = Field(default=None, max_length=255)
    failure_reason: str = Field(default="", max_length=300)
    attempts: int = Field(default=0)
    reversed_minor: int = Field(default=0)
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class RefundStatus(StrEnum):
    PENDING = "pending"  # asked of Stripe, answer not recorded yet (retried with its key)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # Stripe refused: nothing was refunded, the amount is free again


class PaymentRefund(SQLModel, table=True):
    """Money given back to a job's customer; the parties' transfers shrink in proportion.

    Written (pending) before Stripe is asked, so its id is the request's
    idempotency key: a retry of this refund replays it, another refund -- even
    of another amount -- is a new row with a new key.  `applied` once its
    ledger entries and transfer reversals are written (at once, or when the
    payouts are queued, for a refund made in Stripe's dashboard before them).
    """

    __table_args__ = (CheckConstraint("amount_minor > 0", name="refund_amount_positive"),
                      UniqueConstraint("payment_id", "request_key",
                                       name="uq_paymentrefund_payment_id_request_key"))

    id: int | None = Field(default=None, primary_key=True)
    payment_id: int = Field(foreign_key="jobpayment.id", index=True)
    amount_minor: int
    #: The refund form's one-time key: the same form sent twice is one refund.
    request_key: str | None = Field(default=None, max_length=64)
    stripe_refund_id: str = Field(default="", max_length=255)
    status: str = Field(default=RefundStatus.PENDING.value, max_length=10)
    origin: str = Field(default="app", max_length=10)  # app | dashboard
    applied: bool = Field(default=False)
    failure_reason: str = Field(default="", max_length=300)
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class PayoutReversal(SQLModel, table=True):
    """Taking a refunded share back from one payout's transfer; retried until Stripe agrees.

    Its own row (and key) per refund and payout: a reversal that fails after
    the refund stands is not lost with a rollback, and the scheduler retries it
    with the same key and amount.
    """

    __table_args__ = (UniqueConstraint("refund_id", "payout_id"),
                      CheckConstraint("amount_minor > 0", name="reversal_amount_positive"))

    id: int | None = Field(default=None, primary_key=True)
    refund_id: int = Field(foreign_key="paymentrefund.id", index=True)
    payout_id: int = Field(foreign_key="payout.id", index=True)
    amount_minor: int
    status: str = Field(default=PayoutStatus.PENDING.value, max_length=10, index=True)
    reversal_id: str = Field(default="", max_length=255)
    failure_reason: str = Field(default="", max_length=300)
    attempts: int = Field(default=0)  # definite refusals so far: part of the next key
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class PaymentDispute(SQLModel, table=True):
    """A customer's chargeback: the parties' parts are held until Stripe closes it."""

    id: int | None = Field(default=None, primary_key=True)
    dispute_id: str = Field(max_length=255, unique=True)
    payment_id: int = Field(foreign_key="jobpayment.id", index=True)
    amount_minor: int
    status: str = Field(default="open", max_length=10)  # open | won | lost
    applied: bool = Field(default=False)  # the hold's entries are written
    opened_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    closed_at: datetime | None = Field(default=None,
                                       sa_column=Column(UTCDateTime(), nullable=True))
