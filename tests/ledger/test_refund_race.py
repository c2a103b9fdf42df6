"""Refunds tapped twice at once, on real threads against the suite's database.

On PostgreSQL two requests used to read the same "left to refund", both ask
Stripe, and one `refunded_minor +=` overwrote the other.  The payment's row
lock makes the second wait and then see the first: the money refunded, the
rows and Stripe's refunds always agree.  (SQLite serialises writers anyway;
the same test runs there.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from marketplace.clusters.models import User
from marketplace.errors import DomainError
from marketplace.jobs.models import JobContract, OverflowJob
from marketplace.ledger import payments, refunds
from marketplace.ledger.models import JobPayment, LedgerEntry, PaymentRefund
from marketplace.ledger.stripe_gateway import GatewayError, StripeGateway
from tests.conftest import NOW, World
from tests.jobs.conftest import VALUE
from tests.ledger import test_stripe_connect as stripe_tests
from tests.ledger.test_stripe_connect import _confirm, _enable_payouts, _pay
from tests.stripe_fake import FakeStripe

# The Stripe world of the connect tests: a fake Stripe server, an app pointed at it
# and a claimed hand-off job.
fake = stripe_tests.fake
stripe_client = stripe_tests.stripe_client
claimed_job = stripe_tests.claimed_job


def _paid_out(session: Session, client: FlaskClient, fake: tuple[FakeStripe, str],
              world: World, job: OverflowJob) -> StripeGateway:
    server, base = fake
    gateway = StripeGateway(server.secret_key, base)
    _enable_payouts(session, gateway, world.owner_a, world.owner_b)
    _pay(session, client, fake, world, job)
    session.rollback()
    _confirm(session, world, job)
    payments.execute_due_payouts(session, gateway, NOW)
    return gateway


def _at_once(app: Flask, user_ids: list[int], act: Callable[[Session, User], object]
             ) -> list[str]:
    """Run `act` for each user on its own thread and session, released together."""
    engine = app.extensions["engine"]
    barrier = threading.Barrier(len(user_ids), timeout=30)
    outcomes: list[str] = []
    lock = threading.Lock()

    def run(user_id: int) -> None:
        with Session(engine, expire_on_commit=False) as own:
            actor = own.get(User, user_id)
            assert actor is not None
            own.commit()  # no lock held while waiting at the barrier
            barrier.wait()
            try:
                act(own, actor)
                result = "ok"
            except DomainError as refused:
                result = refused.code
            except GatewayError as unsure:  # the twin is still being asked of Stripe
                result = "pending" if not unsure.definite else repr(unsure)
            except Exception as error:  # noqa: BLE001 - reported in the assertion
                result = repr(error)
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=run, args=(u,)) for u in user_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads)
    return sorted(outcomes)


def _state(session: Session) -> tuple[int, list[int], int]:
    session.expire_all()
    payment = session.exec(select(JobPayment)).one()
    rows = sorted(r.amount_minor for r in session.exec(select(PaymentRefund)))
    clawed = sum(e.amount_minor for e in session.exec(select(LedgerEntry).where(
        LedgerEntry.source == "job_refund")))
    return payment.refunded_minor, rows, clawed


def test_two_refunds_of_more_than_half_at_once_make_exactly_one(
        app: Flask, stripe_client: FlaskClient, session: Session, jobs_world: World,
        claimed_job: tuple[OverflowJob, JobContract], fake: tuple[FakeStripe, str]) -> None:
    job, _contract = claimed_job
    gateway = _paid_out(session, stripe_client, fake, jobs_world, job)
    amount = VALUE * 6 // 10
    outcomes = _at_once(app, [jobs_world.owner_a.id, jobs_world.owner_b.id],  # type: ignore[list-item]
                        lambda own, actor: refunds.refund(own, actor, job.id, amount,  # type: ignore[arg-type]
                                                          gateway, NOW))
    assert outcomes == ["invalid_refund", "ok"]
    refunded, rows, clawed = _state(session)
    assert (refunded, rows) == (amount, [amount])
    assert [r["amount"] for r in fake[0].refunds.values()] == [amount]
    assert 0 < clawed <= amount


def test_the_same_refund_form_sent_twice_at_once_is_one_refund(
        app: Flask, stripe_client: FlaskClient, session: Session, jobs_world: World,
        claimed_job: tuple[OverflowJob, JobContract], fake: tuple[FakeStripe, str]) -> None:
    job, _contract = claimed_job
    gateway = _paid_out(session, stripe_client, fake, jobs_world, job)
    amount = VALUE // 10
    outcomes = _at_once(app, [jobs_world.owner_b.id, jobs_world.owner_b.id],  # type: ignore[list-item]
                        lambda own, actor: refunds.refund(own, actor, job.id, amount,  # type: ignore[arg-type]
                                                          gateway, NOW, "form-7f3a"))
    assert outcomes in (["ok", "ok"], ["ok", "pending"])  # the twin waited, or came after
    refunded, rows, _clawed = _state(session)
    assert (refunded, rows) == (amount, [amount])
    assert len(fake[0].refunds) == 1


def test_small_refunds_at_once_all_count(
        app: Flask, stripe_client: FlaskClient, session: Session, jobs_world: World,
        claimed_job: tuple[OverflowJob, JobContract], fake: tuple[FakeStripe, str]) -> None:
    """Four different refunds at once: none lost, every one at Stripe and in the ledger."""
    job, _contract = claimed_job
    gateway = _paid_out(session, stripe_client, fake, jobs_world, job)
    amount = VALUE // 20
    people = [jobs_world.owner_a.id, jobs_world.owner_b.id] * 2
    outcomes = _at_once(app, people, lambda own, actor: refunds.refund(  # type: ignore[arg-type]
        own, actor, job.id, amount, gateway, NOW))  # type: ignore[arg-type]
    assert outcomes == ["ok"] * 4
    refunded, rows, _clawed = _state(session)
    assert (refunded, rows) == (4 * amount, [amount] * 4)
    assert sorted(r["amount"] for r in fake[0].refunds.values()) == [amount] * 4
    reversed_total = sum(t["amount_reversed"] for t in fake[0].transfers.values())
    reversal_entries = sum(e.amount_minor for e in session.exec(select(LedgerEntry).where(
        LedgerEntry.source == "reversal")))
    assert reversed_total == reversal_entries > 0
