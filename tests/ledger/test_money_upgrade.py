"""Money written by revision 0008's code goes on exactly after the upgrade to 0009.

Each test builds its job with today's services and the Stripe fake, takes the
schema down to 0008, writes what 0008's code wrote next (its SQL, its keys, its
rounding, its calls to Stripe), upgrades again and carries on with today's code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from zoneinfo import ZoneInfo

from alembic import command
from flask.testing import FlaskClient
from sqlalchemy import Connection, text
from sqlmodel import Session, SQLModel, col, select

from marketplace.cli import alembic_config
from marketplace.db import make_engine, utcnow
from marketplace.ledger import refunds
from marketplace.ledger.models import EntrySource, JobPayment, Payout, PayoutReversal, entry_key
from marketplace.ledger.stripe_gateway import StripeGateway
from marketplace.money import split_by_weights
from tests.conftest import World
from tests.jobs.conftest import VALUE
from tests.ledger.test_stripe_connect import _confirm, _enable_payouts
from tests.ledger.test_stripe_events import (  # noqa: F401 - fixtures
    REFERRAL,
    SHARE,
    _ask,
    _deliver,
    _entries,
    _fresh,
    _job,
    _nets,
    _paid_out_job,
    _payment,
    _reversed_at_stripe,
    fake,
    gateway,
    stripe_client,
    sweep,
    wire,
)
from tests.stripe_fake import FakeStripe


@contextmanager
def revision_0008(database_url: str, session: Session) -> Iterator[Connection]:
    """The schema as revision 0008 left it, for the block's writes; then 0009 again."""
    _fresh(session)
    config = alembic_config(database_url)
    engine = make_engine(database_url)
    upgraded = False
    try:
        command.stamp(config, "head")
        command.downgrade(config, "0008")
        with engine.begin() as conn:
            yield conn
        command.upgrade(config, "head")
        upgraded = True
    finally:
        if not upgraded:  # leave the schema the other tests expect
            SQLModel.metadata.drop_all(engine)
            SQLModel.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        engine.dispose()


def _old_entry(conn: Connection, source: EntrySource, source_id: int, payer: int | None,
               payee: int | None, amount: int, now: datetime) -> None:
    """An entry as 0008's `record` wrote it: the cluster's currency and month."""
    cluster_id, currency, timezone = conn.execute(text(
        "SELECT c.id, c.currency, c.timezone FROM cluster c JOIN member m "
        "ON m.cluster_id = c.id WHERE m.id = :m"), {"m": payer or payee}).one()
    conn.execute(text(
        "INSERT INTO ledgerentry (cluster_id, source, source_id, entry_key, payer_member_id, "
        "payee_member_id, amount_minor, currency, month, memo, created_at) VALUES (:c, :s, "
        ":i, :k, :payer, :payee, :a, :cur, :month, '', :now)"),
        {"c": cluster_id, "s": source.value, "i": source_id,
         "k": entry_key(source.value, source_id, payer, payee), "payer": payer,
         "payee": payee, "a": amount, "cur": currency,
         "month": now.astimezone(ZoneInfo(timezone)).strftime("%Y-%m"), "now": now})


def _old_refund(conn: Connection, stripe: StripeGateway, payment_id: int, amount: int,
                user_id: int, now: datetime) -> dict[int, int]:
    """A refund as 0008's `payments.refund` made it; what it took back per payout id."""
    intent, total, refunded = conn.execute(text(
        "SELECT payment_intent_id, amount_minor, refunded_minor FROM jobpayment "
        "WHERE id = :p"), {"p": payment_id}).one()
    payouts = conn.execute(text(
        "SELECT p.id, p.member_id, p.amount_minor, p.transfer_id FROM payout p "
        "JOIN jobpayment j ON j.contract_id = p.contract_id WHERE j.id = :p ORDER BY p.id"),
        {"p": payment_id}).all()
    number = refunded
    stripe_refund = stripe.refund(f"refund-{payment_id}-{number}", intent, amount)
    conn.execute(text(
        "INSERT INTO paymentrefund (payment_id, amount_minor, stripe_refund_id, created_by_id, "
        "created_at) VALUES (:p, :a, :r, :u, :now)"),
        {"p": payment_id, "a": amount, "r": stripe_refund, "u": user_id, "now": now})
    refund_id = conn.execute(text("SELECT max(id) FROM paymentrefund")).scalar_one()
    conn.execute(text("UPDATE jobpayment SET refunded_minor = refunded_minor + :a "
                      "WHERE id = :p"), {"a": amount, "p": payment_id})
    clawback = amount * sum(p.amount_minor for p in payouts) // total
    taken: dict[int, int] = {}
    back: dict[int, int] = {}
    for payout, part in zip(payouts, split_by_weights(clawback, [p.amount_minor
                                                                 for p in payouts]),
                            strict=True):
        if part > 0:
            stripe.reverse_transfer(f"reversal-{payout.id}-{number}", payout.transfer_id,
                                     part)
            conn.execute(text("UPDATE payout SET reversed_minor = reversed_minor + :a "
                              "WHERE id = :i"), {"a": part, "i": payout.id})
            taken[payout.id] = part
            back[payout.member_id] = back.get(payout.member_id, 0) + part
    for member_id, part in sorted(back.items()):
        _old_entry(conn, EntrySource.JOB_REFUND, refund_id, member_id, None, part, now)
        _old_entry(conn, EntrySource.REVERSAL, refund_id, None, member_id, part, now)
    return taken


FIRST = 300_001  # 0008 takes back 297_000: A 15_000 (largest remainder), B 282_000
SECOND = 100_000  # both: A 19_999 (19_999.99), B 376_001 (376_001.99) in all


def test_a_refund_after_the_upgrade_takes_back_only_its_own_part(
        stripe_client: FlaskClient, session: Session, jobs_world: World,  # noqa: F811
        fake: FakeStripe, gateway: StripeGateway,  # noqa: F811
        sweep: Callable[[datetime], int], database_url: str) -> None:  # noqa: F811
    """0008 kept a refund's reversals only as `Payout.reversed_minor`, its entries keyed
    by the refund's id.  The next refund takes back each party's share of both refunds
    less what 0008 took -- to the cent -- and its entries do not collide with 0008's."""
    world = jobs_world
    _enable_payouts(session, gateway, world.owner_a, world.owner_b)
    job, contract, payment = _paid_out_job(session, stripe_client, fake, world, gateway, sweep)
    payment_id, lead_id = payment.id, world.owner_b.id
    assert payment_id is not None and lead_id is not None
    with revision_0008(database_url, session) as conn:
        old = _old_refund(conn, gateway, payment_id, FIRST, lead_id, utcnow())
    _fresh(session)
    payouts = list(session.exec(select(Payout).order_by(col(Payout.id))))
    by_member = {p.member_id: p for p in payouts}
    a, b = by_member[world.member_a_id], by_member[world.member_b_id]
    assert (old[a.id], old[b.id]) == (15_000, 282_000)  # type: ignore[index]

    row = refunds.refund(session, world.owner_b, job.id, SECOND, gateway,  # type: ignore[arg-type]
                         utcnow())
    assert row.status == "succeeded"
    _fresh(session)
    both = FIRST + SECOND
    expected = {p.id: both * p.amount_minor // VALUE - old[p.id]  # type: ignore[index]
                for p in payouts}
    assert expected == {a.id: 19_999 - 15_000, b.id: 376_001 - 282_000}
    mine = session.exec(select(PayoutReversal).where(PayoutReversal.refund_id == row.id)).all()
    assert {r.payout_id: (r.amount_minor, r.status) for r in mine} == {
        pid: (amount, "paid") for pid, amount in expected.items()}
    assert _reversed_at_stripe(fake, session, world) == {"A": 19_999, "B": 376_001}
    assert sorted(_entries(session, world, EntrySource.JOB_REFUND)) == sorted([
        ("A", "P", 15_000), ("B", "P", 282_000), ("A", "P", 4_999), ("B", "P", 94_001)])
    assert _payment(session, contract).refunded_minor == both
    assert sweep(utcnow()) == 0  # nothing left over for the scheduler
    assert _nets(session, world) == {"A": 0, "B": 0, "P": 0}

    # the rest of the payment: every transfer comes back whole, nothing more
    refunds.refund(session, world.owner_b, job.id, VALUE - both, gateway,  # type: ignore[arg-type]
                   utcnow())
    assert _reversed_at_stripe(fake, session, world) == {"A": REFERRAL, "B": SHARE}
    assert sweep(utcnow()) == 0
    assert _nets(session, world) == {"A": 0, "B": 0, "P": 0}


def test_payouts_queued_before_the_upgrade_are_paid_once_and_their_shares_kept(
        stripe_client: FlaskClient, session: Session, jobs_world: World,  # noqa: F811
        fake: FakeStripe, gateway: StripeGateway,  # noqa: F811
        sweep: Callable[[datetime], int], database_url: str) -> None:  # noqa: F811
    """0008 wrote what the platform owes each party when it queued the payouts; today's
    code writes it when the transfer is made.  A payout queued before the upgrade is
    made after it: once, with the owed entry 0008 wrote and its own payout entry."""
    world = jobs_world
    _enable_payouts(session, gateway, world.owner_a, world.owner_b)
    job, contract = _job(session, world)
    payment = _ask(session, world, job, gateway)
    assert _deliver(stripe_client, fake.pay(payment.checkout_session_id)[0]) == "processed"
    _fresh(session)
    _confirm(session, world, job)  # queued; the sweep has not run yet
    contract_id, a, b = contract.id, world.member_a_id, world.member_b_id
    assert contract_id is not None
    with revision_0008(database_url, session) as conn:  # what 0008's queue_payouts wrote
        now = utcnow()
        _old_entry(conn, EntrySource.JOB_SHARE, contract_id, None, b, SHARE, now)
        _old_entry(conn, EntrySource.REFERRAL_FEE, contract_id, None, a, REFERRAL, now)

    assert sweep(utcnow()) == 2
    _fresh(session)
    assert {p.status for p in session.exec(select(Payout))} == {"paid"}
    assert sorted(t["amount"] for t in fake.transfers.values()) == sorted([SHARE, REFERRAL])
    assert _entries(session, world, EntrySource.JOB_SHARE) == [("P", "B", SHARE)]
    assert _entries(session, world, EntrySource.REFERRAL_FEE) == [("P", "A", REFERRAL)]
    assert sorted(_entries(session, world, EntrySource.PAYOUT)) == [
        ("A", "P", REFERRAL), ("B", "P", SHARE)]
    assert sweep(utcnow()) == 0
    assert len(fake.transfers) == 2
    assert _nets(session, world) == {"A": 0, "B": 0, "P": 0}
    assert session.exec(select(JobPayment)).one().status == "paid"
