"""Stripe Connect onboarding and webhooks, with the real `stripe` library talking HTTP
to a local server that speaks Stripe's protocol (tests/stripe_fake.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import stripe
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from marketplace import create_app
from marketplace.clusters.models import User
from marketplace.errors import Conflict, ValidationError
from marketplace.jobs import completion, service
from marketplace.jobs.models import JobContract, OverflowJob
from marketplace.ledger import payments, refunds, settlement
from marketplace.ledger import service as ledger_service
from marketplace.ledger.models import (
    ConnectedAccount,
    JobPayment,
    Payout,
    SettlementTransfer,
    StripeEvent,
)
from marketplace.ledger.stripe_gateway import StripeGateway
from tests.conftest import CHEAP_HASHING, NOW, SECRET, World, login
from tests.jobs.conftest import VALUE, job_draft
from tests.stripe_events import event_like, post_event, replayed
from tests.stripe_fake import FakeStripe, fake_stripe_server

WEBHOOK_SECRET = "whsec_test_secret"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake() -> Iterator[tuple[FakeStripe, str]]:
    with fake_stripe_server() as served:
        yield served


@pytest.fixture
def stripe_client(database_url: str, tmp_path: Path, fake: tuple[FakeStripe, str]
                  ) -> Iterator[FlaskClient]:
    """A client of the app configured for Stripe, pointed at the fake server."""
    app = create_app({
        "TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": SECRET,
        "WTF_CSRF_ENABLED": False, "REDIS_URL": None, "PUBLIC_URL": "http://localhost",
        "UPLOAD_DIR": str(tmp_path / "uploads"), "STRIPE_SECRET_KEY": fake[0].secret_key,
        "STRIPE_API_BASE": fake[1], "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "RATELIMIT_ENABLED": False,
        **CHEAP_HASHING})
    yield app.test_client()
    app.extensions["engine"].dispose()


def _post_event(client: FlaskClient, event: dict[str, object], secret: str = WEBHOOK_SECRET
                ) -> int:
    payload = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(payload, secret)
    return client.post("/stripe/webhook", data=payload, content_type="application/json",
                       headers={"Stripe-Signature": header}).status_code


def _account_event(event_id: str, account_id: str, created: int, *, submitted: bool,
                   payouts: bool) -> dict[str, object]:
    return {"id": event_id, "object": "event", "type": "account.updated", "created": created,
            "api_version": "2025-01-27", "livemode": False, "pending_webhooks": 1,
            "data": {"object": {"id": account_id, "object": "account",
                                "details_submitted": submitted, "payouts_enabled": payouts}}}


def test_owner_onboards_once_however_often_it_clicks(stripe_client: FlaskClient,
                                                     session: Session, world: World,
                                                     fake: tuple[FakeStripe, str]) -> None:
    server, _base = fake
    login(stripe_client, world.owner_a)
    assert "Set up payouts with Stripe" in stripe_client.get("/ledger").get_data(as_text=True)
    first = stripe_client.post("/ledger/payouts/setup")
    second = stripe_client.post("/ledger/payouts/setup")
    assert first.status_code == second.status_code == 302
    assert first.location.startswith("https://connect.stripe.test/setup/")
    assert len(server.accounts) == 1
    account = session.exec(select(ConnectedAccount)).one()
    assert account.member_id == world.member_a_id and account.account_id in server.accounts
    created = [p for method, path, p in server.requests if path == "/v1/accounts"]
    assert created[0]["type"] == "express" and created[0]["metadata"] == {
        "member_id": str(world.member_a_id)}
    links = [p for method, path, p in server.requests if path == "/v1/account_links"]
    assert [p["account"] for p in links] == [account.account_id] * 2
    assert links[0]["return_url"] == "http://localhost/ledger/payouts/done"


def test_a_retried_create_returns_the_first_account(fake: tuple[FakeStripe, str]) -> None:
    server, base = fake
    gateway = StripeGateway(server.secret_key, base)
    first = gateway.create_express_account(7, "owner@alpha.test", "CA")
    again = gateway.create_express_account(7, "owner@alpha.test", "CA")
    assert first == again and len(server.accounts) == 1


def test_crew_cannot_set_up_payouts_and_offline_mode_says_so(stripe_client: FlaskClient,
                                                             client: FlaskClient,
                                                             world: World) -> None:
    login(stripe_client, world.crew_a)
    assert stripe_client.post("/ledger/payouts/setup").status_code == 403
    login(client, world.owner_a)  # the default app has no Stripe key
    page = client.get("/ledger").get_data(as_text=True)
    assert "Offline ledger" in page and "Set up payouts" not in page
    refused = client.post("/ledger/payouts/setup", headers={"Accept": "application/json"})
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "offline_ledger"


def test_account_updates_apply_once_and_never_go_back_in_time(stripe_client: FlaskClient,
                                                              session: Session, world: World,
                                                              fake: tuple[FakeStripe, str]
                                                              ) -> None:
    server, _base = fake
    login(stripe_client, world.owner_a)
    stripe_client.post("/ledger/payouts/setup")
    account_id = session.exec(select(ConnectedAccount)).one().account_id
    newer = server.update_account(account_id, details_submitted=True, payouts_enabled=True)
    older = event_like(newer, created=newer["created"] - 60,
                       object_changes={"payouts_enabled": False})
    reads = f"/v1/accounts/{account_id}"
    assert post_event(stripe_client, newer).get_json()["outcome"] == "processed"
    before_replay = [p for _m, p, _q in server.requests].count(reads)
    # Stripe retries: acted on once, and Stripe is not even asked again
    assert post_event(stripe_client, replayed(newer)).get_json()["outcome"] == "duplicate"
    assert [p for _m, p, _q in server.requests].count(reads) == before_replay
    # an older state arrives late: the account's state is read from Stripe, not the event
    assert post_event(stripe_client, older).get_json()["outcome"] == "processed"
    session.rollback()  # end the test's read snapshot to see the app's commits
    session.expire_all()
    account = session.exec(select(ConnectedAccount)).one()
    current = server.accounts[account_id]
    assert (account.details_submitted, account.payouts_enabled) == (
        current["details_submitted"], current["payouts_enabled"]) == (True, True)
    assert sorted(e.event_id for e in session.exec(select(StripeEvent))) == sorted(
        [newer["id"], older["id"]])
    assert "Payouts enabled" in stripe_client.get("/ledger").get_data(as_text=True)


def test_bad_signature_is_refused_and_writes_nothing(stripe_client: FlaskClient,
                                                     session: Session, world: World) -> None:
    event = _account_event("evt_bad", "acct_x", int(time.time()), submitted=True,
                           payouts=True)
    assert _post_event(stripe_client, event, secret="whsec_wrong") == 400
    assert stripe_client.post("/stripe/webhook", data="{}",
                              content_type="application/json").status_code == 400
    assert session.exec(select(StripeEvent)).all() == []


def test_unknown_event_types_are_acknowledged(stripe_client: FlaskClient,
                                              session: Session) -> None:
    event = {"id": "evt_other", "object": "event", "type": "customer.created",
             "created": int(time.time()), "data": {"object": {"id": "cus_1"}}}
    assert _post_event(stripe_client, event) == 200
    assert [e.type for e in session.exec(select(StripeEvent))] == ["customer.created"]


def test_gateway_type_checks_against_stripes_own_parameters(tmp_path: Path) -> None:
    """A misspelled Stripe parameter in the gateway fails here, before Stripe would."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         "--cache-dir", str(tmp_path / "mypy"), "marketplace/ledger/stripe_gateway.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_app_default_is_offline(app: Flask) -> None:
    assert app.config["STRIPE_SECRET_KEY"] is None


# --- paid jobs: checkout, transfers, retries, refunds ------------------------------------

REFERRAL = 61_728  # 500 bp of VALUE, half to even
PLATFORM_FEE = 12_346  # 100 bp of VALUE (12 345.7)


def _enable_payouts(session: Session, gateway: StripeGateway, *owners: User) -> None:
    """Connected accounts that finished onboarding (as Stripe's webhook would say)."""
    for owner in owners:
        assert owner.member_id is not None
        account_id = gateway.create_express_account(owner.member_id, owner.email, "CA")
        session.add(ConnectedAccount(member_id=owner.member_id, account_id=account_id,
                                     details_submitted=True, payouts_enabled=True,
                                     state_at=NOW))
    session.commit()


def _paid_event(fake_server: FakeStripe, session_id: str, event_id: str, **changes: object
                ) -> dict[str, object]:
    checkout = {**fake_server.sessions[session_id], "status": "complete",
                "payment_status": "paid", **changes}
    return {"id": event_id, "object": "event", "type": "checkout.session.completed",
            "created": int(time.time()), "data": {"object": checkout}}


@pytest.fixture
def claimed_job(session: Session, jobs_world: World) -> tuple[OverflowJob, JobContract]:
    """A's hand-off job, claimed by B (so B leads the contract)."""
    # Starts today: the work can be reported done at NOW.
    job = service.post_job(session, jobs_world.owner_a, job_draft(starts_on=NOW.date()), NOW)
    contract = service.claim_job(session, jobs_world.owner_b, job.id, NOW)  # type: ignore[arg-type]
    return job, contract


def _confirm(session: Session, world: World, job: OverflowJob) -> None:
    """B reports the work done and A, the poster, confirms it."""
    completion.report_done(session, world.owner_b, job.id, NOW)  # type: ignore[arg-type]
    completion.confirm_completion(session, world.owner_a, job.id, NOW)  # type: ignore[arg-type]


def _pay(session: Session, client: FlaskClient, fake: tuple[FakeStripe, str], world: World,
         job: OverflowJob) -> JobPayment:
    server, base = fake
    payment = payments.request_payment(session, world.owner_b, job.id,  # type: ignore[arg-type]
                                       StripeGateway(server.secret_key, base),
                                       "http://localhost/ok", "http://localhost/no", NOW)
    [paid] = server.pay(payment.checkout_session_id)  # the customer pays: a charge exists
    paid["id"] = "evt_paid"
    assert _post_event(client, paid) == 200
    return payment


def test_customer_payment_is_recorded_from_the_webhook_once(
        stripe_client: FlaskClient, session: Session, jobs_world: World,
        claimed_job: tuple[OverflowJob, JobContract], fake: tuple[FakeStripe, str]) -> None:
    server, _base = fake
    job, contract = claimed_job
    payment = _pay(session, stripe_client, fake, jobs_world, job)
    checkout = server.sessions[payment.checkout_session_id]
    assert checkout["amount_total"] == VALUE and checkout["currency"] == "cad"
    assert checkout["payment_intent_data"]["transfer_group"] == f"contract-{contract.id}"
    assert _post_event(stripe_client, _paid_event(server, payment.checkout_session_id,
                                                  "evt_paid")) == 200  # a replay
    session.rollback()
    session.expire_all()
    stored = payments.payment_of(session, contract.id)  # type: ignore[arg-type]
    assert stored is not None and stored.status == "paid"
    assert stored.payment_intent_id == checkout["payment_intent"]
    assert session.exec(select(Payout)).all() == []  # not confirmed yet: nothing paid out


def test_a_payment_of_the_wrong_amount_or_currency_is_not_recorded(
        stripe_client: FlaskClient, session: Session, jobs_world: World,
        claimed_job: tuple[OverflowJob, JobContract], fake: tuple[FakeStripe, str]) -> None:
    server, base = fake
    job, contract = claimed_job
    payment = payments.request_payment(session, jobs_world.owner_b, job.id,  # type: ignore[arg-type]
                                       StripeGateway(server.secret_key, base), "http://x/ok",
                                       "http://x/no", NOW)
    assert _post_event(stripe_client, _paid_event(
        server, payment.checkout_session_id, "evt_usd", currency="usd")) == 200
    assert _post_event(stripe_client, _paid_event(
        server, payment.checkout_session_id, "evt_less", amount_total=VALUE - 1)) == 200
    session.rollback()
    session.expire_all()
    assert payments.payment_of(session, contract.id).status == "open"  # type: ignore[arg-type, union-attr]


def test_confirmed_paid_job_pays_each_party_once_even_after_a_crash(
        stripe_client: FlaskClient, session: Session, jobs_world: World,
        claimed_job: tuple[OverflowJob, JobContract], fake: tuple[FakeStripe, str]) -> None:
    server, base = fake
    gateway = StripeGateway(server.secret_key, base)
    job, contract = claimed_job
    _enable_payouts(session, gateway, jobs_world.owner_a, jobs_world.owner_b)
    _pay(session, stripe_client, fake, jobs_world, job)
    session.rollback()
    _confirm(session, jobs_world, job)
    payouts = {(p.member_id, p.kind): p for p in session.exec(select(Payout))}
    assert {k: p.amount_minor for k, p in payouts.items()} == {
        (jobs_world.member_b_id, "share"): VALUE - REFERRAL - PLATFORM_FEE,
        (jobs_world.member_a_id, "referral"): REFERRAL}
    # The process sent B's transfer (drawing on the job's charge) and died before
    # writing Stripe's answer down.
    share = payouts[(jobs_world.member_b_id, "share")]
    [charge] = server.charges
    gateway.transfer(f"payout-{share.id}-try-0", share.amount_minor, "CAD",
                     session.get(ConnectedAccount, jobs_world.member_b_id).account_id,  # type: ignore[union-attr]
                     f"contract-{contract.id}", charge)
    assert payments.execute_due_payouts(session, gateway, NOW) == 2
    assert payments.execute_due_payouts(session, gateway, NOW) == 0
    assert sorted(t["amount"] for t in server.transfers.values()) == sorted(
        [VALUE - REFERRAL - PLATFORM_FEE, REFERRAL])  # one transfer per party, no double
    assert all(t["transfer_group"] == f"contract-{contract.id}"
               for t in server.transfers.values())
    nets = settlement.month_nets(session, jobs_world.cluster.id, "2026-06")  # type: ignore[arg-type]
    assert {m: n.net for m, n in nets.items()} == {
        jobs_world.member_a_id: 0, jobs_world.member_b_id: 0, None: 0}


def test_a_refused_transfer_shows_stripes_reason_and_is_retried(
        stripe_client: FlaskClient, session: Session, jobs_world: World,
        claimed_job: tuple[OverflowJob, JobContract], fake: tuple[FakeStripe, str]) -> None:
    server, base = fake
    gateway = StripeGateway(server.secret_key, base)
    job, _contract = claimed_job
    _enable_payouts(session, gateway, jobs_world.owner_a, jobs_world.owner_b)
    completion.report_done(session, jobs_world.owner_b, job.id, NOW)  # type: ignore[arg-type]
    _pay(session, stripe_client, fake, jobs_world, job)
    session.rollback()
    assert session.exec(select(Payout)).all() == []  # paid, but not confirmed yet
    completion.confirm_completion(session, jobs_world.owner_a, job.id, NOW)  # type: ignore[arg-type]
    server.refuse_transfers.append("balance_insufficient")
    assert payments.execute_due_payouts(session, gateway, NOW) == 1
    failed = session.exec(select(Payout).where(Payout.status == "failed")).one()
    assert "insufficient funds" in failed.failure_reason and failed.attempts == 1
    login(stripe_client, jobs_world.coordinator)
    assert "insufficient funds" in stripe_client.get("/ledger").get_data(as_text=True)
    assert payments.execute_due_payouts(session, gateway, NOW) == 1
    assert len(server.transfers) == 2
    assert {p.status for p in session.exec(select(Payout))} == {"paid"}


def test_a_refund_reverses_the_transfers_in_proportion(
        stripe_client: FlaskClient, session: Session, jobs_world: World,
        claimed_job: tuple[OverflowJob, JobContract], fake: tuple[FakeStripe, str]) -> None:
    server, base = fake
    gateway = StripeGateway(server.secret_key, base)
    job, contract = claimed_job
    _enable_payouts(session, gateway, jobs_world.owner_a, jobs_world.owner_b)
    _pay(session, stripe_client, fake, jobs_world, job)
    session.rollback()
    _confirm(session, jobs_world, job)
    with pytest.raises(Conflict):  # transfers not made yet
        refunds.refund(session, jobs_world.owner_b, job.id, 1000, gateway, NOW)  # type: ignore[arg-type]
    session.rollback()
    payments.execute_due_payouts(session, gateway, NOW)
    half = VALUE // 2
    refunds.refund(session, jobs_world.owner_b, job.id, half, gateway, NOW)  # type: ignore[arg-type]
    assert [r["amount"] for r in server.refunds.values()] == [half]
    transferred = VALUE - PLATFORM_FEE
    clawback = half * transferred // VALUE
    reversed_parts = {t["amount"]: t["amount_reversed"] for t in server.transfers.values()}
    assert sum(reversed_parts.values()) == clawback
    for amount, back in reversed_parts.items():
        assert abs(back - clawback * amount / transferred) < 1
    with pytest.raises(ValidationError):  # more than is left of the payment
        refunds.refund(session, jobs_world.owner_b, job.id, VALUE, gateway, NOW)  # type: ignore[arg-type]
    session.rollback()
    nets = settlement.month_nets(session, jobs_world.cluster.id, "2026-06")  # type: ignore[arg-type]
    assert all(n.net == 0 for n in nets.values())  # the reversals settled the refunds


def test_approved_month_pays_members_through_stripe_once(
        session: Session, world: World, fake: tuple[FakeStripe, str]) -> None:
    server, base = fake
    gateway = StripeGateway(server.secret_key, base)
    _enable_payouts(session, gateway, world.owner_a, world.owner_b)
    settlement.add_adjustment(session, world.coordinator, "2026-05", world.member_a_id,
                              100_00, "Fuel for the shared trailer", NOW)
    settlement.add_adjustment(session, world.coordinator, "2026-05", world.member_b_id,
                              -40_00, "Late return", NOW)
    settlement.draft(session, world.cluster, "2026-05", NOW)
    settlement.approve(session, world.coordinator, "2026-05", {world.member_b_id: "BANK-7"},
                       NOW, by_stripe=True)
    transfers = {t.member_id: t for t in session.exec(select(SettlementTransfer))}
    to_a, from_b = transfers[world.member_a_id], transfers[world.member_b_id]
    assert (to_a.method, to_a.status) == ("stripe", "pending")
    assert (from_b.method, from_b.status, from_b.reference) == ("manual", "recorded", "BANK-7")
    # sent once before a crash: the scheduler's run replays it instead of paying again
    gateway.transfer(f"settlement-{to_a.id}-try-0", 100_00, "CAD",
                     session.get(ConnectedAccount, world.member_a_id).account_id,  # type: ignore[union-attr]
                     "settlement-2026-05")
    assert payments.execute_due_settlement_transfers(session, gateway, NOW) == 1
    assert payments.execute_due_settlement_transfers(session, gateway, NOW) == 0
    assert [(t["amount"], t["transfer_group"]) for t in server.transfers.values()] == [
        (100_00, "settlement-2026-05")]
    session.refresh(to_a)
    assert to_a.status == "paid" and to_a.reference in server.transfers
    assert ledger_service.balance(session, world.member_a_id) == 0  # May is settled
