"""What the ledger does when a poster confirms a job: the contract's money becomes due.

Why here and not in jobs/completion.py: jobs never import the ledger (the import
contracts in pyproject.toml), so the confirmation calls this through the port it
declares, in its own transaction.  The ledger package installs it on import
(ledger/__init__.py), and every app imports the ledger.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from marketplace.jobs.completion import book_money_with
from marketplace.jobs.models import JobContract
from marketplace.ledger.contracts import record_contract
from marketplace.ledger.models import JobPayment, PaymentStatus
from marketplace.ledger.payments import locked_payment, queue_payouts


@book_money_with
def book_confirmed_contract(session: Session, contract: JobContract, now: datetime) -> None:
    """Entries (offline) or payouts (Stripe, once paid) for a contract just confirmed."""
    # Locked, so a payment clearing at this moment waits for the confirmation and then
    # queues the payouts itself (or was paid first, and is seen paid here).
    payment = locked_payment(session, JobPayment.contract_id == contract.id)
    if payment is None:
        record_contract(session, contract, now)  # offline: the lead collected the money
    elif payment.status == PaymentStatus.PAID:
        queue_payouts(session, contract, now)  # Stripe: the platform pays each party
    # else: the customer has not paid yet; the payment webhook queues the payouts
