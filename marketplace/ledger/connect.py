"""Stripe Connect onboarding and webhook events, as rules (the gateway does the HTTP).

Onboarding reuses a member's account if it has one; creating one carries an
idempotency key from the member id, so two owners clicking at once, or a
retry after a crash, end with one Stripe account.

Webhook events are recorded by id before they act: a replayed or duplicated
event finds its id taken and changes nothing.  An event of the other mode
(test vs live key) is refused and not recorded.  Stripe does not promise order,
and `created` has whole seconds, so `account.updated` is taken as "this
account changed": its state is read from Stripe, never from the event.

An event about something we do not hold yet is parked, not dropped, and
applied when it appears: an account Stripe announces before our row commits,
a checkout session before its payment's row, a refund or dispute of a charge
whose payment intent we learn only from a `checkout.session.completed` still
on its way.  Events about a connected account's own objects (`account` set,
other types) are not ours to apply to the platform's payments.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import or_, update
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
from marketplace.persisted import id_of
from marketplace.rows import add_once

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
    account = account_of(session, id_of(member))
    if account is None:
        account_id = gateway.create_express_account(id_of(member), actor.email, country)
        opened = ConnectedAccount(member_id=id_of(member), account_id=account_id,
                                  state_at=datetime.fromtimestamp(0, UTC))
        # the other click may have stored the same (idempotent) account first
        account = add_once(session, opened,
                           lambda: account_of(session, opened.member_id))
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
        known = checkout_event(session, event.type, data, now)
        waits_for = data.get("id")
    elif event.type == "charge.succeeded" and data.get("payment_intent"):
        session.execute(update(JobPayment).where(
            col(JobPayment.payment_intent_id) == data.get("payment_intent"),
            col(JobPayment.charge_id).is_(None)).values(charge_id=data.get("id")))
        return "processed"  # the charge is also read from Stripe when it is needed
    elif event.type == "charge.refunded":
        known = charge_refunded(session, data, now)
        waits_for = data.get("payment_intent")
    elif event.type in _DISPUTES:
        known = dispute_event(session, event.type, data, now)
        waits_for = data.get("payment_intent")
    else:
        return "ignored"
    if known:
        return "processed"
    if not waits_for:  # no payment intent: not a charge of a Checkout Session of ours
        return "ignored"
    return _park(session, event, str(waits_for), dict(data))


def _park(session: Session, event: WebhookEvent, waits_for: str,
          payload: dict[str, Any] | None = None) -> str:
    """Keep the event until `waits_for` (a Stripe id) appears; its object if it is needed
    then (an account's state is read from Stripe instead)."""
    session.execute(update(StripeEvent).where(col(StripeEvent.event_id) == event.id)
                    .values(status="parked", waits_for=waits_for, payload=payload))
    log.info("stripe event %s (%s) waits for %s: parked", event.id, event.type, waits_for)
    return "parked"


def _account_updated(session: Session, gateway: ConnectGateway, event: WebhookEvent,
                     now: datetime) -> str:
    account_id = str(event.data.get("id") or "")
    if event.account is not None and event.account != account_id:
        log.warning("account.updated %s names account %s for %s; ignored", event.id,
                    event.account, account_id)
        return "ignored"
    row = session.exec(select(ConnectedAccount).where(
        ConnectedAccount.account_id == account_id)).first()
    if row is None:  # onboarding, or the sweep, applies it once the row is there
        return _park(session, event, account_id)
    _refresh(session, gateway, row, now)
    return "processed"


def _refresh(session: Session, gateway: ConnectGateway, row: ConnectedAccount, now: datetime
             ) -> None:
    """The account's state as Stripe holds it now (whatever order events came in)."""
    row.details_submitted, row.payouts_enabled = gateway.account_state(row.account_id)
    row.state_at = now
    session.add(row)


def apply_due_parked(session: Session, gateway: ConnectGateway, now: datetime) -> int:
    """Scheduler: parked events whose account or payment has appeared since (onboarding
    missed them because they committed a moment after it looked; a payment's
    intent is learnt from its checkout session's event)."""
    waiting = session.exec(select(StripeEvent.waits_for).join(
        ConnectedAccount, col(ConnectedAccount.account_id) == StripeEvent.waits_for)
        .where(StripeEvent.status == "parked").distinct()).all()
    done = 0
    for account_id in waiting:
        try:
            done += apply_parked(session, gateway, account_id or "", now)
        except GatewayError as error:
            session.rollback()
            log.warning("parked events of %s wait: %s", account_id, error.reason)
    payments_known = session.exec(select(StripeEvent.event_id).join(
        JobPayment, or_(col(JobPayment.payment_intent_id) == StripeEvent.waits_for,
                        col(JobPayment.checkout_session_id) == StripeEvent.waits_for))
        .where(StripeEvent.status == "parked")
        .order_by(col(StripeEvent.received_at), col(StripeEvent.event_id))).all()
    for event_id in dict.fromkeys(payments_known):  # in the order they came
        try:
            done += _apply_parked_event(session, gateway, event_id, now)
        except Exception:  # the others still go; this one is tried again next time
            session.rollback()
            log.exception("parked stripe event %s not applied", event_id)
    return done


def _apply_parked_event(session: Session, gateway: ConnectGateway, event_id: str,
                        now: datetime) -> int:
    """Apply one parked payment event as if it came now, once (the claim is the guard)."""
    event_type, payload = session.exec(select(StripeEvent.type, StripeEvent.payload).where(
        StripeEvent.event_id == event_id)).one()
    claimed = session.exec(update(StripeEvent).where(
        col(StripeEvent.event_id) == event_id, col(StripeEvent.status) == "parked")
        .values(status="processed", payload=None))
    if claimed.rowcount != 1 or payload is None:
        session.rollback()  # applied meanwhile by another sweep
        return 0
    outcome = _dispatch(session, gateway, WebhookEvent(
        id=event_id, type=event_type, livemode=False, account=None, data=payload), now)
    session.commit()
    log.info("parked stripe event %s (%s) applied: %s", event_id, event_type, outcome)
    return int(outcome == "processed")


def apply_parked(session: Session, gateway: ConnectGateway, account_id: str, now: datetime
                 ) -> int:
    """Apply the events that came before the account's row: read its state once."""
    parked = session.exec(select(StripeEvent.event_id).where(
        StripeEvent.waits_for == account_id, StripeEvent.status == "parked")).all()
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
