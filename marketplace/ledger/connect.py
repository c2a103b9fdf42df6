"""Stripe Connect onboarding and webhook events, as rules (the gateway does the HTTP).

Onboarding reuses a member's account if it has one; creating one carries an
idempotency key from the member id, so two owners clicking at once, or a
retry after a crash, end with one Stripe account.

Webhook events are recorded by id before they act: a replayed or duplicated
event finds its id taken and changes nothing.  An event of the other mode
(test vs live key) is refused and not recorded.  Stripe does not promise order,
and `created` has whole seconds, so `account.updated` is taken as "this
account changed": its state is read from Stripe, never from the event.  One
for an account we do not hold yet (Stripe announces it before our row
commits) is parked and applied when the row appears, not dropped.  Events
about a connected account's own objects (`account` set, other types) are not
ours to apply to the platform's payments.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from marketplace.clusters.models import Role, User
from marketplace.clusters.service import acting_member
from marketplace.errors import N_, Forbidden
from marketplace.ledger.disputes import dispute_event
from marketplace.ledger.models import ConnectedAccount, JobPayment, StripeEvent
from marketplace.ledger.payments import checkout_event
from marketplace.ledger.refunds import charge_refunded
from marketplace.ledger.stripe_gateway import GatewayError

log = logging.getLogger(__name__)


class ConnectGateway(Protocol):
    def create_express_account(self, member_id: int, email: str, country: str) -> str: ...

    def onboarding_link(self, account_id: str, refresh_url: str, return_url: str) -> str: ...

    def account_state(self, account_id: str) -> tuple[bool, bool]: ...


@dataclass(frozen=True)
class WebhookEvent:
    """What we read of a verified Stripe event."""

    id: str
    type: str
    livemode: bool
    account: str | None  # set for events about a connected account
    data: Mapping[str, Any]


_CHECKOUT = {"checkout.session.completed", "checkout.session.async_payment_succeeded",
             "checkout.session.async_payment_failed"}
_DISPUTES = {"charge.dispute.created", "charge.dispute.closed"}


def account_of(session: Session, member_id: int) -> ConnectedAccount | None:
    """The member's connected account, if it started onboarding."""
    return session.get(ConnectedAccount, member_id)


def start_onboarding(session: Session, actor: User, gateway: ConnectGateway, country: str,
                     refresh_url: str, return_url: str, now: datetime) -> str:
    """The Stripe-hosted onboarding URL for the actor's business (an owner's job)."""
    member = acting_member(session, actor)
    if actor.role != Role.OWNER:
        raise Forbidden("owner_role_only", N_("Only an owner of the business can set up its "
                                              "payouts."))
    account = account_of(session, member.id)  # type: ignore[arg-type]
    if account is None:
        account_id = gateway.create_express_account(member.id, actor.email, country)  # type: ignore[arg-type]
        account = ConnectedAccount(member_id=member.id, account_id=account_id,
                                   state_at=datetime.fromtimestamp(0, UTC))
        session.add(account)
        try:
            session.commit()
        except IntegrityError:  # the other click stored the same (idempotent) account
            session.rollback()
            account = account_of(session, member.id)  # type: ignore[arg-type]
            assert account is not None
        log.info("connected account member_id=%s account_id=%s", member.id, account.account_id)
    apply_parked(session, gateway, account.account_id, now)
    return gateway.onboarding_link(account.account_id, refresh_url, return_url)


def apply_event(session: Session, gateway: ConnectGateway, event: WebhookEvent,
                now: datetime, *, livemode: bool) -> str:
    """Act on a verified webhook event once; what became of it.

    "wrong_mode" (not recorded: the endpoint is wired to the other mode),
    "duplicate", "parked", "ignored" or "processed".  A GatewayError (reading
    an account's state) propagates with nothing committed, so the caller can
    answer with an error and Stripe delivers the event again.
    """
    if event.livemode != livemode:
        log.warning("stripe event %s livemode=%s refused by a livemode=%s endpoint", event.id,
                    event.livemode, livemode)
        return "wrong_mode"
    ours = event.type == "account.updated" or event.account is None
    session.add(StripeEvent(event_id=event.id, type=event.type, received_at=now))
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        log.info("stripe event %s (%s) already processed", event.id, event.type)
        return "duplicate"
    outcome = _dispatch(session, gateway, event, now) if ours else "ignored"
    if outcome == "ignored":
        log.info("stripe event %s of type %s (account %s) acknowledged, nothing to do",
                 event.id, event.type, event.account)
    session.commit()
    return outcome


def _dispatch(session: Session, gateway: ConnectGateway, event: WebhookEvent, now: datetime
              ) -> str:
    data = event.data
    if event.type == "account.updated":
        return _account_updated(session, gateway, event, now)
    if event.type in _CHECKOUT:
        checkout_event(session, event.type, data, now)
    elif event.type == "charge.succeeded" and data.get("payment_intent"):
        session.execute(update(JobPayment).where(
            col(JobPayment.payment_intent_id) == data.get("payment_intent"),
            col(JobPayment.charge_id).is_(None)).values(charge_id=data.get("id")))
    elif event.type == "charge.refunded":
        charge_refunded(session, data, now)
    elif event.type in _DISPUTES:
        dispute_event(session, event.type, data, now)
    else:
        return "ignored"
    return "processed"


def _account_updated(session: Session, gateway: ConnectGateway, event: WebhookEvent,
                     now: datetime) -> str:
    account_id = str(event.data.get("id") or "")
    if event.account is not None and event.account != account_id:
        log.warning("account.updated %s names account %s for %s; ignored", event.id,
                    event.account, account_id)
        return "ignored"
    row = session.exec(select(ConnectedAccount).where(
        ConnectedAccount.account_id == account_id)).first()
    if row is None:
        session.execute(update(StripeEvent).where(col(StripeEvent.event_id) == event.id)
                        .values(status="parked", account_id=account_id))
        log.info("account.updated %s for account %s not held yet; parked", event.id, account_id)
        return "parked"
    _refresh(session, gateway, row, now)
    return "processed"


def _refresh(session: Session, gateway: ConnectGateway, row: ConnectedAccount, now: datetime
             ) -> None:
    """The account's state as Stripe holds it now (whatever order events came in)."""
    row.details_submitted, row.payouts_enabled = gateway.account_state(row.account_id)
    row.state_at = now
    session.add(row)


def apply_due_parked(session: Session, gateway: ConnectGateway, now: datetime) -> int:
    """Scheduler: parked events whose account row has appeared since (onboarding missed
    them because they committed a moment after it looked)."""
    waiting = session.exec(select(StripeEvent.account_id).join(
        ConnectedAccount, col(ConnectedAccount.account_id) == StripeEvent.account_id)
        .where(StripeEvent.status == "parked").distinct()).all()
    done = 0
    for account_id in waiting:
        try:
            done += apply_parked(session, gateway, account_id or "", now)
        except GatewayError as error:
            session.rollback()
            log.warning("parked events of %s wait: %s", account_id, error.reason)
    return done


def apply_parked(session: Session, gateway: ConnectGateway, account_id: str, now: datetime
                 ) -> int:
    """Apply the events that came before the account's row: read its state once."""
    parked = session.exec(select(StripeEvent.event_id).where(
        StripeEvent.account_id == account_id, StripeEvent.status == "parked")).all()
    row = session.exec(select(ConnectedAccount).where(
        ConnectedAccount.account_id == account_id)).first()
    if not parked or row is None:
        return 0
    _refresh(session, gateway, row, now)
    session.execute(update(StripeEvent).where(col(StripeEvent.event_id).in_(parked))
                    .values(status="processed"))
    session.commit()
    log.info("%d parked events applied to account %s", len(parked), account_id)
    return len(parked)
