"""The fake Stripe (tests/stripe_fake.py) is only worth trusting if it behaves like Stripe:
these drive it with the real `stripe` library and check its refusals, objects and
events against Stripe's shapes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from flask import Flask, request
from stripe.params import TransferCreateParams, TransferReversalCreateParams
from stripe.params.checkout import SessionCreateParams

from tests.stripe_events import event_like, post_event, replayed, signed
from tests.stripe_fake import ROUTES, FakeStripe, check_params, fake_stripe_server

EVENT_KEYS = {"id", "object", "type", "created", "api_version", "livemode",
              "pending_webhooks", "request", "data"}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeStripe, str]]:
    """One server for the module: the tests create their own objects and never
    assume empty stores."""
    with fake_stripe_server() as pair:
        yield pair


@pytest.fixture
def fake(served: tuple[FakeStripe, str]) -> Iterator[FakeStripe]:
    server = served[0]
    yield server
    server.available_balance = None
    server.refuse_transfers.clear()


@pytest.fixture
def client(served: tuple[FakeStripe, str]) -> stripe.StripeClient:
    server, base = served
    return stripe.StripeClient(server.secret_key, base_addresses={"api": base},
                               max_network_retries=0)


def _checkout(client: stripe.StripeClient, amount: int = 10_000,
              currency: str = "cad") -> stripe.checkout.Session:
    params: SessionCreateParams = {
        "mode": "payment", "success_url": "http://x/ok", "cancel_url": "http://x/no",
        "line_items": [{"quantity": 1, "price_data": {
            "currency": currency, "unit_amount": amount, "product_data": {"name": "Job"}}}],
        "payment_intent_data": {"transfer_group": "contract-1",
                                "metadata": {"contract_id": "1"}},
        "metadata": {"contract_id": "1"}}
    return client.v1.checkout.sessions.create(params)


def _paid_charge(client: stripe.StripeClient, fake: FakeStripe, amount: int = 10_000
                 ) -> dict[str, Any]:
    """A checkout session the customer paid by card; its charge."""
    session = _checkout(client, amount)
    fake.pay(session.id)
    intent = fake.payment_intents[str(session.payment_intent)]
    return fake.charges[intent["latest_charge"]]


def _account(client: stripe.StripeClient) -> str:
    return client.v1.accounts.create({
        "type": "express", "country": "CA", "email": "owner@alpha.test",
        "capabilities": {"transfers": {"requested": True}}}).id


def _refused(call: Any) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        call()
    return raised.value


# --- parameters are checked against the library's own TypedDicts ------------------------

def test_routes_check_the_params_type_the_library_sends_for_them() -> None:
    """Each route's TypedDict is the one the library's service method takes, so the
    fake checks what the app's type-checked calls actually send."""
    services = {("POST", "/v1/accounts"): ("accounts", "create"),
                ("GET", "/v1/accounts/{id}"): ("accounts", "retrieve"),
                ("POST", "/v1/account_links"): ("account_links", "create"),
                ("POST", "/v1/checkout/sessions"): ("checkout.sessions", "create"),
                ("GET", "/v1/checkout/sessions/{id}"): ("checkout.sessions", "retrieve"),
                ("GET", "/v1/payment_intents/{id}"): ("payment_intents", "retrieve"),
                ("GET", "/v1/charges/{id}"): ("charges", "retrieve"),
                ("POST", "/v1/transfers"): ("transfers", "create"),
                ("POST", "/v1/transfers/{id}/reversals"): ("transfers.reversals", "create"),
                ("POST", "/v1/refunds"): ("refunds", "create")}
    v1: Any = stripe.StripeClient("sk_test_x").v1
    for route in ROUTES:
        path = route.pattern.pattern.replace("([^/]+)", "{id}")
        service_path, method = services[(route.method, path)]
        service = v1
        for part in service_path.split("."):
            service = getattr(service, part)
        annotation = str(getattr(service, method).__annotations__["params"])
        assert route.params.__name__ in annotation, (path, annotation)


def test_an_unknown_parameter_is_refused_with_its_name(client: stripe.StripeClient) -> None:
    account = _account(client)
    misspelled: Any = {"amount": 100, "currency": "cad", "destination": account,
                       "transfer_grup": "x"}
    error = _refused(lambda: client.v1.transfers.create(misspelled))
    assert error.http_status == 400 and error.param == "transfer_grup"
    assert error.code == "parameter_unknown"
    assert error.user_message == "Received unknown parameter: transfer_grup"


def test_an_unknown_nested_parameter_names_its_full_path(client: stripe.StripeClient) -> None:
    misspelled: Any = {"mode": "payment", "line_items": [
        {"quantity": 1, "price_data": {"currency": "cad", "unit_amount": 5,
                                       "product_data": {"name": "A"}}},
        {"quantity": 1, "price_data": {"currency": "cad", "unit_amout": 5,
                                       "product_data": {"name": "B"}}}]}
    error = _refused(lambda: client.v1.checkout.sessions.create(misspelled))
    assert error.param == "line_items[1][price_data][unit_amout]"
    assert error.user_message == ("Received unknown parameter: "
                                  "line_items[1][price_data][unit_amout]")


def test_a_missing_required_parameter_is_refused(client: stripe.StripeClient) -> None:
    account = _account(client)
    no_currency: Any = {"amount": 100, "destination": account}
    error = _refused(lambda: client.v1.transfers.create(no_currency))
    assert (error.param, error.code) == ("currency", "parameter_missing")
    assert error.user_message == "Missing required param: currency."
    no_enabled: Any = {"mode": "payment", "line_items": [{
        "quantity": 1, "adjustable_quantity": {"maximum": 3},
        "price_data": {"currency": "cad", "unit_amount": 5, "product_data": {"name": "A"}}}]}
    nested = _refused(lambda: client.v1.checkout.sessions.create(no_enabled))
    assert nested.param == "line_items[0][adjustable_quantity][enabled]"


def test_values_outside_a_literal_or_of_the_wrong_type_are_refused(
        client: stripe.StripeClient, fake: FakeStripe) -> None:
    charge = _paid_charge(client, fake)
    refunds: Any = client.v1.refunds  # the calls below break its types on purpose
    enum = _refused(lambda: refunds.create({"charge": charge["id"], "origin": "wallet"}))
    assert enum.param == "origin"
    assert enum.user_message == "Invalid origin: must be one of customer_balance"
    number = _refused(lambda: refunds.create({"charge": charge["id"], "amount": "ten"}))
    assert (number.param, number.code) == ("amount", "parameter_invalid_integer")
    flag = _refused(lambda: refunds.create({"charge": charge["id"],
                                            "reverse_transfer": "yes"}))
    assert (flag.param, flag.user_message) == ("reverse_transfer", "Invalid boolean: yes")
    assert charge["amount_refunded"] == 0  # nothing ran


def test_nested_lists_metadata_unsets_and_expansions_pass(client: stripe.StripeClient,
                                                          fake: FakeStripe) -> None:
    session = client.v1.checkout.sessions.create({
        "mode": "payment", "success_url": "http://x/ok",
        "line_items": [{"quantity": 2, "price_data": {
            "currency": "cad", "unit_amount": 1_500, "product_data": {"name": "A"}}},
            {"quantity": 1, "price_data": {
                "currency": "cad", "unit_amount": 700, "product_data": {"name": "B"}},
             "adjustable_quantity": {"enabled": True, "maximum": 3}}],
        "custom_text": {"submit": ""},  # Literal[''] | a nested TypedDict: unset
        "allowed_payment_method_types": ["card", "acss_debit"],
        "metadata": {"contract_id": "9", "note": ""}, "expand": ["payment_intent"]})
    assert session.amount_total == 2 * 1_500 + 700
    assert session.metadata is not None
    assert session.metadata.to_dict() == {"contract_id": "9", "note": ""}
    assert session.payment_intent.object == "payment_intent"  # type: ignore[union-attr]
    account = _account(client)
    transfer = client.v1.transfers.create({"amount": 100, "currency": "cad",
                                           "destination": account, "expand": ["destination"]})
    assert transfer.destination.id == account  # type: ignore[union-attr]
    reversal = client.v1.transfers.reversals.create(str(transfer.id), {"metadata": ""})
    assert reversal.metadata is not None and reversal.metadata.to_dict() == {}
    assert fake.transfers[transfer.id]["reversed"]


def test_the_checker_handles_unions_and_request_options_directly() -> None:
    """Edges the library's own calls rarely reach."""
    assert check_params({"metadata": {"a": "b"}}, TransferReversalCreateParams) is None
    refused = check_params({"metadata": "x"}, TransferReversalCreateParams)
    assert refused is not None and (refused.message, refused.param) == ("Invalid object",
                                                                         "metadata")
    deep = check_params({"metadata": {"a": {"b": "c"}}}, TransferReversalCreateParams)
    assert deep is not None and deep.param == "metadata[a]"
    listed = check_params({"expand": "latest_charge"}, TransferReversalCreateParams)
    assert listed is not None and (listed.message, listed.param) == ("Invalid array",
                                                                      "expand")
    # request options are headers, never form params
    options = check_params({"idempotency_key": "k"}, TransferReversalCreateParams)
    assert options is not None and options.code == "parameter_unknown"


def test_a_property_that_cannot_be_expanded_is_refused(client: stripe.StripeClient) -> None:
    session = _checkout(client)
    error = _refused(lambda: client.v1.payment_intents.retrieve(
        str(session.payment_intent), {"expand": ["currency"]}))
    assert error.param == "expand" and "(currency)" in (error.user_message or "")


# --- retrieving state ------------------------------------------------------------------

def test_get_account_shows_onboarding_progress(client: stripe.StripeClient,
                                                fake: FakeStripe) -> None:
    account_id = _account(client)
    fresh = client.v1.accounts.retrieve(account_id)
    assert (fresh.details_submitted, fresh.payouts_enabled, fresh.charges_enabled) == (
        False, False, False)
    assert fresh.requirements.currently_due  # type: ignore[union-attr]
    event = fake.update_account(account_id, details_submitted=True, payouts_enabled=True)
    assert EVENT_KEYS <= event.keys() and event["account"] == account_id
    assert event["type"] == "account.updated" and event["data"]["object"]["id"] == account_id
    assert event["data"]["previous_attributes"]["payouts_enabled"] is False
    now = client.v1.accounts.retrieve(account_id)
    assert now.details_submitted and now.payouts_enabled
    assert now.capabilities.transfers == "active"  # type: ignore[union-attr]
    assert now.requirements.currently_due == []  # type: ignore[union-attr]
    missing = _refused(lambda: client.v1.accounts.retrieve("acct_nobody"))
    assert (missing.http_status, missing.code) == (404, "resource_missing")


def test_get_payment_intent_shows_its_charge_once_paid(client: stripe.StripeClient,
                                                        fake: FakeStripe) -> None:
    session = _checkout(client, 4_200)
    intent_id = str(session.payment_intent)
    before = client.v1.payment_intents.retrieve(intent_id)
    assert (before.amount, before.currency, before.latest_charge) == (4_200, "cad", None)
    assert before.status == "requires_payment_method"
    [completed] = fake.pay(session.id)
    after = client.v1.payment_intents.retrieve(intent_id, {"expand": ["latest_charge"]})
    assert after.status == "succeeded" and after.amount_received == 4_200
    charge = after.latest_charge
    assert charge.object == "charge" and charge.id.startswith("ch_")  # type: ignore[union-attr]
    assert charge.payment_intent == intent_id  # type: ignore[union-attr]
    assert completed["type"] == "checkout.session.completed"
    assert completed["data"]["object"]["payment_status"] == "paid"
    assert completed["data"]["object"]["status"] == "complete"
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"
    missing = _refused(lambda: client.v1.payment_intents.retrieve("pi_nothing"))
    assert (missing.http_status, missing.code) == (404, "resource_missing")


def test_a_delayed_payment_completes_unpaid_then_settles_or_fails(
        client: stripe.StripeClient, fake: FakeStripe) -> None:
    good, bad = _checkout(client), _checkout(client)
    [completed] = fake.pay(good.id, delayed=True)
    assert completed["data"]["object"]["payment_status"] == "unpaid"
    assert fake.payment_intents[str(good.payment_intent)]["status"] == "processing"
    settled = fake.settle_delayed(good.id, succeeded=True)
    assert settled["type"] == "checkout.session.async_payment_succeeded"
    assert settled["data"]["object"]["payment_status"] == "paid"
    fake.pay(bad.id, delayed=True)
    failed = fake.settle_delayed(bad.id, succeeded=False)
    assert failed["type"] == "checkout.session.async_payment_failed"
    assert (failed["data"]["object"]["status"], failed["data"]["object"]["payment_status"]
            ) == ("complete", "unpaid")
    charge_id = fake.payment_intents[str(bad.payment_intent)]["latest_charge"]
    assert fake.charge_event(charge_id, "charge.failed")["data"]["object"]["status"] == "failed"
    with pytest.raises(ValueError):
        fake.pay(good.id)  # a completed session cannot be paid again


# --- transfers: source_transaction and the available balance ------------------------

def test_source_transaction_must_be_a_charge_and_draws_on_it(client: stripe.StripeClient,
                                                              fake: FakeStripe) -> None:
    account, charge = _account(client), _paid_charge(client, fake, 1_000)
    unknown = _refused(lambda: client.v1.transfers.create({
        "amount": 100, "currency": "cad", "destination": account,
        "source_transaction": "ch_unknown"}))
    assert (unknown.param, unknown.code) == ("source_transaction", "resource_missing")
    fake.available_balance = 0  # the charge's funds are not available yet: no matter
    first = client.v1.transfers.create({"amount": 600, "currency": "cad",
                                        "destination": account,
                                        "source_transaction": charge["id"]})
    assert fake.transfers[first.id]["source_transaction"] == charge["id"]
    beyond = _refused(lambda: client.v1.transfers.create({
        "amount": 401, "currency": "cad", "destination": account,
        "source_transaction": charge["id"]}))
    assert beyond.code == "balance_insufficient"
    client.v1.transfers.create({"amount": 400, "currency": "cad", "destination": account,
                                "source_transaction": charge["id"]})
    assert fake.available_balance == 0


def test_the_available_balance_limits_plain_transfers(client: stripe.StripeClient,
                                                      fake: FakeStripe) -> None:
    account = _account(client)
    fake.available_balance = 1_000
    transfer = client.v1.transfers.create({"amount": 700, "currency": "cad",
                                           "destination": account})
    assert fake.available_balance == 300
    error = _refused(lambda: client.v1.transfers.create(
        {"amount": 301, "currency": "cad", "destination": account}))
    assert error.code == "balance_insufficient" and fake.available_balance == 300
    client.v1.transfers.reversals.create(transfer.id, {"amount": 200})
    assert fake.available_balance == 500  # a reversal brings the money back


def test_refuse_transfers_still_fails_the_next_transfer(client: stripe.StripeClient,
                                                        fake: FakeStripe) -> None:
    account = _account(client)
    fake.refuse_transfers.append("balance_insufficient")
    error = _refused(lambda: client.v1.transfers.create(
        {"amount": 1, "currency": "cad", "destination": account}))
    assert error.code == "balance_insufficient"
    assert client.v1.transfers.create({"amount": 1, "currency": "cad",
                                       "destination": account}).amount == 1


# --- refunds and disputes --------------------------------------------------------------

def test_a_dashboard_refund_sends_charge_refunded_with_running_totals(
        client: stripe.StripeClient, fake: FakeStripe) -> None:
    charge = _paid_charge(client, fake, 5_000)
    first = fake.refund_in_dashboard(charge["payment_intent"], 1_000)
    second = fake.refund_in_dashboard(charge["id"], 4_000)
    assert EVENT_KEYS <= first.keys() and first["type"] == "charge.refunded"
    assert first["id"].startswith("evt_") and first["livemode"] is False
    assert "account" not in first  # the platform's own charge
    obj = second["data"]["object"]
    assert (obj["object"], obj["amount"], obj["amount_refunded"], obj["refunded"]) == (
        "charge", 5_000, 5_000, True)
    assert obj["payment_intent"] == charge["payment_intent"]
    assert obj["refunds"]["object"] == "list"
    assert [r["amount"] for r in obj["refunds"]["data"]] == [4_000, 1_000]
    assert second["data"]["previous_attributes"] == {"amount_refunded": 1_000,
                                                     "refunded": False}
    assert fake.events[-2:] == [first, second]
    with pytest.raises(ValueError):
        fake.refund_in_dashboard(charge["id"], 1)  # nothing left to refund


def test_an_api_refund_updates_the_charge_and_its_event_names_the_request(
        client: stripe.StripeClient, fake: FakeStripe) -> None:
    charge = _paid_charge(client, fake, 3_000)
    refund = client.v1.refunds.create({"payment_intent": charge["payment_intent"],
                                       "amount": 1_200}, {"idempotency_key": "refund-7"})
    assert (refund.charge, refund.amount, refund.status) == (charge["id"], 1_200,
                                                             "succeeded")
    assert charge["amount_refunded"] == 1_200 and not charge["refunded"]
    event = fake.refund_event(charge["id"])
    assert event["data"]["object"]["amount_refunded"] == 1_200
    assert event["request"]["idempotency_key"] == "refund-7"
    assert event["request"]["id"].startswith("req_")
    too_much = _refused(lambda: client.v1.refunds.create(
        {"charge": charge["id"], "amount": 1_801}))
    assert too_much.param == "amount"


def test_a_dispute_opens_and_closes_with_stripes_shapes(client: stripe.StripeClient,
                                                        fake: FakeStripe) -> None:
    charge = _paid_charge(client, fake, 2_500)
    fake.available_balance = 10_000
    created = fake.open_dispute(charge["id"])
    dispute = created["data"]["object"]
    assert created["type"] == "charge.dispute.created"
    assert dispute["id"].startswith("dp_") and dispute["object"] == "dispute"
    assert (dispute["amount"], dispute["charge"], dispute["payment_intent"],
            dispute["currency"], dispute["status"], dispute["reason"]) == (
        2_500, charge["id"], charge["payment_intent"], "cad", "needs_response", "fraudulent")
    assert fake.available_balance == 7_500 and charge["disputed"]
    refused = _refused(lambda: client.v1.refunds.create({"charge": charge["id"]}))
    assert refused.code == "charge_disputed"
    closed = fake.close_dispute(dispute["id"], won=True)
    assert closed["type"] == "charge.dispute.closed"
    assert closed["data"]["object"]["status"] == "won" and fake.available_balance == 10_000
    other = _paid_charge(client, fake, 900)
    lost = fake.close_dispute(fake.open_dispute(other["id"], 500)["data"]["object"]["id"],
                              won=False)
    assert lost["data"]["object"]["status"] == "lost" and fake.available_balance == 9_500


# --- idempotency ---------------------------------------------------------------------------

def test_idempotency_replays_refuses_reuse_and_saves_no_validation_failure(
        client: stripe.StripeClient, fake: FakeStripe) -> None:
    account = _account(client)
    params: TransferCreateParams = {"amount": 250, "currency": "cad", "destination": account}
    first = client.v1.transfers.create(params, {"idempotency_key": "tr-k1"})
    again = client.v1.transfers.create(params, {"idempotency_key": "tr-k1"})
    assert first.id == again.id and again.last_response is not None
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.transfers.create({**params, "amount": 251}, {"idempotency_key": "tr-k1"})
    misspelled: Any = {**params, "amont": 1}
    _refused(lambda: client.v1.transfers.create(misspelled, {"idempotency_key": "tr-k2"}))
    fixed = client.v1.transfers.create(params, {"idempotency_key": "tr-k2"})
    assert fixed.id in fake.transfers and fixed.id != first.id


# --- the event helpers ---------------------------------------------------------------------

def test_events_are_signed_the_way_the_library_verifies(client: stripe.StripeClient,
                                                        fake: FakeStripe) -> None:
    event = fake.update_account(_account(client), details_submitted=True,
                                payouts_enabled=False)
    payload, header = signed(event)
    parsed = stripe.Webhook.construct_event(payload, header, "whsec_test_secret")
    assert (parsed.id, parsed.type, parsed.account) == (event["id"], "account.updated",
                                                        event["account"])
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, signed(event, "whsec_other")[1],
                                       "whsec_test_secret")
    assert replayed(event) == event
    older = event_like(event, created=event["created"] - 60,
                       object_changes={"details_submitted": False})
    assert older["id"] != event["id"] and older["created"] == event["created"] - 60
    assert older["data"]["object"]["details_submitted"] is False
    assert event["data"]["object"]["details_submitted"] is True  # the original is intact


def test_post_event_delivers_to_the_webhook_path() -> None:
    app = Flask(__name__)

    @app.post("/stripe/webhook")
    def webhook() -> dict[str, str]:
        event = stripe.Webhook.construct_event(request.get_data(),
                                               request.headers.get("Stripe-Signature"),
                                               "whsec_test_secret")
        return {"received": event.id}

    response = post_event(app.test_client(), {"id": "evt_1", "object": "event",
                                              "type": "customer.created", "data": {}})
    assert response.get_json() == {"received": "evt_1"}


def test_livemode_follows_the_key() -> None:
    assert FakeStripe(secret_key="sk_live_x").livemode
    assert not FakeStripe().livemode
