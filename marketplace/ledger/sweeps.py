"""The scheduler's money sweep: everything Stripe has still to do, retried until done.

One task, every 30 s, with the gateway of the app whose session runs it
(none in offline ledger mode): job payouts, approved months' transfers,
refunds whose answer was lost, reversals not agreed yet, and refunds or
disputes that arrived before the job's payouts existed, and webhook events
that arrived before the account or payment they are about.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from sqlmodel import Session

from marketplace.ledger.connect import ConnectGateway, apply_due_parked
from marketplace.ledger.disputes import apply_due_holds
from marketplace.ledger.payments import (
    PaymentGateway,
    execute_due_payouts,
    execute_due_settlement_transfers,
)
from marketplace.ledger.refunds import RefundGateway, execute_due_refunds, execute_due_reversals
from marketplace.scope import Slot

log = logging.getLogger(__name__)


class MoneyGateway(PaymentGateway, RefundGateway, ConnectGateway, Protocol):
    """What the sweep asks of Stripe."""


#: The app's gateway, lent to its sessions (marketplace/scope.py); empty in offline mode.
GATEWAY: Slot[MoneyGateway] = Slot("gateway")


def execute_installed_payouts(session: Session, now: datetime) -> int:
    """Scheduler task: every money step due, with the gateway of the session's app.

    A step that fails is logged and the others still run: one row that cannot be
    recorded must not stop everyone else's money (each step also isolates its rows).
    """
    gateway = GATEWAY.of(session)
    if gateway is None:
        return 0
    steps: list[tuple[str, Callable[[], int]]] = [
        ("payouts", lambda: execute_due_payouts(session, gateway, now)),
        ("settlement transfers", lambda: execute_due_settlement_transfers(session, gateway,
                                                                           now)),
        ("refunds", lambda: execute_due_refunds(session, gateway, now)),
        ("dispute holds", lambda: apply_due_holds(session, now)),
        ("reversals", lambda: execute_due_reversals(session, gateway, now)),
        ("parked events", lambda: apply_due_parked(session, gateway, now)),
    ]
    done = 0
    for name, step in steps:
        try:
            done += step()
        except Exception:
            session.rollback()
            log.exception("money sweep: %s failed; the other steps go on", name)
    return done
