"""The one module that talks to Stripe (DESIGN: only the gateway imports stripe).

Every call that creates something carries an idempotency key derived from our
own ids, so a retried request -- after a timeout, a crash between our write
and Stripe's answer, or a double click -- returns the object the first one
made instead of making a second.  Parameters are stripe's own typed dicts,
so `mypy --strict` (tests/ledger/test_gateway_types.py) catches a misspelled
parameter before Stripe would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import stripe
from stripe.params import (
    AccountCreateParams,
    AccountLinkCreateParams,
    RefundCreateParams,
    TransferCreateParams,
    TransferReversalCreateParams,
)
from stripe.params.checkout import SessionCreateParams

T = TypeVar("T")


class InvalidWebhook(ValueError):
    """A webhook whose signature does not verify, or whose body is not an event."""


class GatewayError(RuntimeError):
    """Stripe refused or could not be reached; `reason` is safe to show a coordinator.

    `definite` is False when the request may have taken effect at Stripe (the
    connection broke, Stripe answered 5xx or asked us to slow down): the caller
    keeps its record and retries with the same idempotency key, never a new one.
    """

    def __init__(self, reason: str, *, definite: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.definite = definite


#: Answers after which the request may have taken effect (or, for a key reused with
#: other parameters, must not be retried under a new key): the caller keeps the key.
_UNSURE = (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError,
           stripe.IdempotencyError)


def is_live_key(secret_key: str) -> bool:
    """Whether a secret (or restricted) key is for live mode: events must match it."""
    return secret_key.startswith(("sk_live_", "rk_live_"))


class StripeGateway:
    """Stripe Connect calls the marketplace makes, on the platform's account."""

    def __init__(self, secret_key: str, api_base: str | None = None) -> None:
        self.livemode = is_live_key(secret_key)
        self._client = stripe.StripeClient(
            secret_key, base_addresses={"api": api_base} if api_base else {},
            max_network_retries=2)

    def create_express_account(self, member_id: int, email: str, country: str) -> str:
        """An Express connected account for a member business; its id."""
        params: AccountCreateParams = {
            "type": "express", "country": country, "email": email,
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {"member_id": str(member_id)},
        }
        account = self._call(lambda: self._client.v1.accounts.create(
            params, {"idempotency_key": f"account-member-{member_id}"}))
        return account.id

    def onboarding_link(self, account_id: str, refresh_url: str, return_url: str) -> str:
        """A one-time Stripe-hosted onboarding URL for the account."""
        params: AccountLinkCreateParams = {
            "account": account_id, "refresh_url": refresh_url, "return_url": return_url,
            "type": "account_onboarding",
        }
        link = self._call(lambda: self._client.v1.account_links.create(params))
        return link.url


    def account_state(self, account_id: str) -> tuple[bool, bool]:
        """(details_submitted, payouts_enabled) as Stripe holds them now.

        Webhooks say *that* an account changed; its state is read here, so
        events delivered out of order (or in the same second) cannot leave an
        older state standing.
        """
        account = self._call(lambda: self._client.v1.accounts.retrieve(account_id))
        return bool(account.details_submitted), bool(account.payouts_enabled)

    def latest_charge(self, payment_intent_id: str) -> str | None:
        """The charge of a paid PaymentIntent: transfers name it as their source."""
        intent = self._call(lambda: self._client.v1.payment_intents.retrieve(payment_intent_id))
        charge = intent.latest_charge
        return charge if isinstance(charge, str) or charge is None else charge.id

    def refunded_total(self, payment_intent_id: str) -> int:
        """How much of a payment Stripe has refunded in all (ours and the dashboard's)."""
        intent = self._call(lambda: self._client.v1.payment_intents.retrieve(
            payment_intent_id, {"expand": ["latest_charge"]}))
        charge = intent.latest_charge
        return int(getattr(charge, "amount_refunded", 0) or 0) if charge else 0

    def create_checkout(self, contract_id: int, amount_minor: int, currency: str, title: str,
                        success_url: str, cancel_url: str, attempt: int = 0
                        ) -> tuple[str, str]:
        """A Checkout Session for the job's customer on the platform's account: (id, url).

        `transfer_group` ties the charge to the contract's later transfers.
        `attempt` counts sessions asked for the contract: after a delayed
        payment failed, the next session needs a key of its own.
        """
        params: SessionCreateParams = {
            "mode": "payment", "success_url": success_url, "cancel_url": cancel_url,
            "line_items": [{"quantity": 1, "price_data": {
                "currency": currency.lower(), "unit_amount": amount_minor,
                "product_data": {"name": title[:250]}}}],
            "payment_intent_data": {"transfer_group": f"contract-{contract_id}",
                                    "metadata": {"contract_id": str(contract_id)}},
            "metadata": {"contract_id": str(contract_id)},
        }
        session = self._call(lambda: self._client.v1.checkout.sessions.create(
            params, {"idempotency_key": f"checkout-contract-{contract_id}"
                             + (f"-attempt-{attempt}" if attempt else "")}))
        return session.id, session.url or ""

    def transfer(self, key: str, amount_minor: int, currency: str, destination: str,
                 group: str, source_transaction: str | None = None) -> str:
        """Move money to a connected account; `key` makes a retry a replay.

        `group` is the transfer group: the contract ("contract-12") or the
        settled month ("settlement-2026-10").  `source_transaction` (the job's
        charge) lets the transfer draw on that charge's funds as soon as they
        arrive instead of waiting for the platform's available balance.
        """
        params: TransferCreateParams = {
            "amount": amount_minor, "currency": currency.lower(), "destination": destination,
            "transfer_group": group, "metadata": {"group": group},
        }
        if source_transaction:
            params["source_transaction"] = source_transaction
        transfer = self._call(lambda: self._client.v1.transfers.create(
            params, {"idempotency_key": key}))
        return transfer.id

    def reverse_transfer(self, key: str, transfer_id: str, amount_minor: int) -> str:
        """Take part of a transfer back (a refund reverses the parties' shares)."""
        params: TransferReversalCreateParams = {"amount": amount_minor}
        reversal = self._call(lambda: self._client.v1.transfers.reversals.create(
            transfer_id, params, {"idempotency_key": key}))
        return reversal.id

    def refund(self, key: str, payment_intent_id: str, amount_minor: int) -> str:
        """Give the customer `amount_minor` back from its payment."""
        params: RefundCreateParams = {"payment_intent": payment_intent_id,
                                      "amount": amount_minor}
        refund = self._call(lambda: self._client.v1.refunds.create(
            params, {"idempotency_key": key}))
        return refund.id

    @staticmethod
    def _call(request: Callable[[], T]) -> T:
        try:
            return request()
        except stripe.StripeError as error:
            raise GatewayError(error.user_message or str(error.code or type(error).__name__),
                               definite=not isinstance(error, _UNSURE)) from error


def gateway_from_config(config: Mapping[str, Any]) -> StripeGateway | None:
    """The gateway for the app's settings, or None in offline ledger mode (no key)."""
    key = config.get("STRIPE_SECRET_KEY")
    return StripeGateway(key, config.get("STRIPE_API_BASE")) if key else None


def parse_event(payload: bytes, signature: str | None, secret: str) -> stripe.Event:
    """Verify a webhook's signature with the endpoint secret and return the event."""
    try:
        event: stripe.Event = stripe.Webhook.construct_event(payload, signature, secret)
    except (ValueError, stripe.SignatureVerificationError) as error:
        raise InvalidWebhook(str(error)) from error
    return event
