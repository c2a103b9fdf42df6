"""Stripe Connect onboarding and webhook events, as rules (the gateway does the HTTP).

Onboarding reuses a member's account if it has one; creating one carries an
idempotency key from the member id, so two owners clicking at once, or a
retry after a crash, end with one Stripe account.  Webhook events are
recorded by id before they act: a replayed or duplicated event finds its id
taken and changes nothing.  `account.updated` events carry their creation
time; an event older than the state we hold (Stripe does not promise order)
is acknowledged and ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from marketplace.clusters.models import Role, User
from marketplace.clusters.service import acting_member
from marketplace.errors import N_, Forbidden
from marketplace.ledger.models import ConnectedAccount, StripeEvent
from marketplace.ledger.payments import checkout_completed

log = logging.getLogger(__name__)


class ConnectGateway(Protocol):
    def create_express_account(self, member_id: int, email: str, country: str) -> str: ...

    def onboarding_link(self, account_id: str, refresh_url: str, return_url: str) -> str: ...


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
    return gateway.onboarding_link(account.account_id, refresh_url, return_url)


def apply_event(session: Session, event_id: str, event_type: str, created: int,
                data: Mapping[str, Any], now: datetime) -> bool:
    """Act on a verified webhook event once; False when it was already processed."""
    session.add(StripeEvent(event_id=event_id, type=event_type, received_at=now))
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        log.info("stripe event %s (%s) already processed", event_id, event_type)
        return False
    if event_type == "account.updated":
        _account_updated(session, data, datetime.fromtimestamp(created, UTC))
    elif event_type == "checkout.session.completed":
        checkout_completed(session, data, now)
    else:
        log.info("stripe event %s of type %s acknowledged, nothing to do", event_id, event_type)
    session.commit()
    return True


def _account_updated(session: Session, account: Mapping[str, Any], state_at: datetime) -> None:
    row = session.exec(select(ConnectedAccount).where(
        ConnectedAccount.account_id == account.get("id"))).first()
    if row is None:
        log.info("account.updated for unknown account %s ignored", account.get("id"))
        return
    if state_at < row.state_at:
        log.info("account.updated for %s older than the state held; ignored", row.account_id)
        return
    row.details_submitted = bool(account.get("details_submitted"))
    row.payouts_enabled = bool(account.get("payouts_enabled"))
    row.state_at = state_at
    session.add(row)
