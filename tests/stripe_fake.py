"""A small stateful server that speaks Stripe's wire protocol for the Connect calls we make.

localstripe has no Connect endpoints, so tests point the real `stripe` library
(its own HTTP request layer, nothing patched) at this server instead: form-
encoded nested parameters, bearer-key auth, Stripe's object and error shapes,
and idempotency keys that replay the first response (and refuse a reused key
with different parameters), as Stripe does.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """`a[b][c]=v` form keys -> {"a": {"b": {"c": "v"}}} (Stripe's encoding)."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = result
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return result


@dataclass
class FakeStripe:
    """The server's state; tests read it to see what Stripe was asked to do."""

    secret_key: str = "sk_test_fake"
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: error codes the next transfers fail with (e.g. "balance_insufficient"), in order
    refuse_transfers: list[str] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    _replies: dict[str, tuple[str, int, str]] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        return self._respond(request)(environ, start_response)

    def _respond(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {self.secret_key}":
            return self._error(401, "invalid_request_error", "Invalid API Key provided.")
        body = request.get_data(as_text=True)
        params = _nest(parse_qsl(body, keep_blank_values=True))
        key = request.headers.get("Idempotency-Key")
        with self._lock:
            self.requests.append((request.method, request.path, params))
            if key and key in self._replies:
                fingerprint, status, payload = self._replies[key]
                if fingerprint != f"{request.path}?{body}":
                    return self._error(400, "idempotency_error", "Keys for idempotent "
                                       "requests can only be used with the same parameters "
                                       "they were first used with.")
                response = Response(payload, status, mimetype="application/json")
                response.headers["Idempotent-Replayed"] = "true"
                return response
            response = self._route(request.method, request.path, params)
            if key and request.method == "POST":
                self._replies[key] = (f"{request.path}?{body}", response.status_code,
                                      response.get_data(as_text=True))
            return response

    def _route(self, method: str, path: str, params: dict[str, Any]) -> Response:
        if method == "POST" and path == "/v1/accounts":
            return self._create_account(params)
        if method == "POST" and path == "/v1/account_links":
            return self._create_account_link(params)
        if method == "POST" and path == "/v1/checkout/sessions":
            return self._create_session(params)
        if method == "POST" and path == "/v1/transfers":
            return self._create_transfer(params)
        if method == "POST" and path.startswith("/v1/transfers/") and path.endswith("/reversals"):
            return self._create_reversal(path.split("/")[3], params)
        if method == "POST" and path == "/v1/refunds":
            return self._create_refund(params)
        return self._error(404, "invalid_request_error", f"Unrecognized request URL ({method}"
                           f": {path}).")

    def _create_account(self, params: dict[str, Any]) -> Response:
        if params.get("type") not in ("express", "standard", "custom"):
            return self._error(400, "invalid_request_error", "Invalid type.", param="type")
        account_id = f"acct_fake{next(self._ids):06d}"
        account = {"id": account_id, "object": "account", "type": params["type"],
                   "country": params.get("country", "US"), "email": params.get("email"),
                   "details_submitted": False, "payouts_enabled": False,
                   "charges_enabled": False, "metadata": params.get("metadata", {})}
        self.accounts[account_id] = account
        return Response(json.dumps(account), 200, mimetype="application/json")

    def _create_account_link(self, params: dict[str, Any]) -> Response:
        account_id = params.get("account")
        if account_id not in self.accounts:
            return self._error(400, "invalid_request_error", f"No such account: "
                               f"'{account_id}'", param="account", code="resource_missing")
        for name in ("refresh_url", "return_url", "type"):
            if not params.get(name):
                return self._error(400, "invalid_request_error",
                                   f"Missing required param: {name}.", param=name,
                                   code="parameter_missing")
        link = {"object": "account_link", "created": 1_790_000_000,
                "expires_at": 1_790_000_300,
                "url": f"https://connect.stripe.test/setup/e/{account_id}/{next(self._ids)}"}
        return Response(json.dumps(link), 200, mimetype="application/json")

    def _create_session(self, params: dict[str, Any]) -> Response:
        items = params.get("line_items", {})
        item = items.get("0", {}) if isinstance(items, dict) else {}
        price = item.get("price_data", {})
        if params.get("mode") != "payment" or not price.get("unit_amount"):
            return self._error(400, "invalid_request_error", "Missing line_items.",
                               param="line_items")
        number = next(self._ids)
        session = {"id": f"cs_test_fake{number:06d}", "object": "checkout.session",
                   "mode": "payment", "status": "open", "payment_status": "unpaid",
                   "amount_total": int(price["unit_amount"]) * int(item.get("quantity", 1)),
                   "currency": price.get("currency"),
                   "payment_intent": f"pi_fake{number:06d}",
                   "url": f"https://checkout.stripe.test/c/pay/cs_test_fake{number:06d}",
                   "metadata": params.get("metadata", {}),
                   "payment_intent_data": params.get("payment_intent_data", {})}
        self.sessions[session["id"]] = session
        return Response(json.dumps(session), 200, mimetype="application/json")

    def _create_transfer(self, params: dict[str, Any]) -> Response:
        if params.get("destination") not in self.accounts:
            return self._error(400, "invalid_request_error", "No such destination: "
                               f"'{params.get('destination')}'", param="destination",
                               code="resource_missing")
        if self.refuse_transfers:
            code = self.refuse_transfers.pop(0)
            return self._error(400, "invalid_request_error", "You have insufficient funds in "
                               "your Stripe account for this transfer.", code=code)
        transfer = {"id": f"tr_fake{next(self._ids):06d}", "object": "transfer",
                    "amount": int(params["amount"]), "currency": params.get("currency"),
                    "destination": params["destination"],
                    "transfer_group": params.get("transfer_group"), "amount_reversed": 0,
                    "metadata": params.get("metadata", {})}
        self.transfers[transfer["id"]] = transfer
        return Response(json.dumps(transfer), 200, mimetype="application/json")

    def _create_reversal(self, transfer_id: str, params: dict[str, Any]) -> Response:
        transfer = self.transfers.get(transfer_id)
        if transfer is None:
            return self._error(404, "invalid_request_error", f"No such transfer: "
                               f"'{transfer_id}'", code="resource_missing")
        amount = int(params.get("amount", transfer["amount"] - transfer["amount_reversed"]))
        if amount > transfer["amount"] - transfer["amount_reversed"]:
            return self._error(400, "invalid_request_error", "Reversal exceeds the transfer.",
                               param="amount")
        transfer["amount_reversed"] += amount
        reversal = {"id": f"trr_fake{next(self._ids):06d}", "object": "transfer_reversal",
                    "amount": amount, "transfer": transfer_id}
        return Response(json.dumps(reversal), 200, mimetype="application/json")

    def _create_refund(self, params: dict[str, Any]) -> Response:
        intent = params.get("payment_intent")
        if not any(s["payment_intent"] == intent for s in self.sessions.values()):
            return self._error(400, "invalid_request_error", f"No such payment_intent: "
                               f"'{intent}'", param="payment_intent", code="resource_missing")
        refund = {"id": f"re_fake{next(self._ids):06d}", "object": "refund",
                  "amount": int(params["amount"]), "payment_intent": intent,
                  "status": "succeeded"}
        self.refunds[refund["id"]] = refund
        return Response(json.dumps(refund), 200, mimetype="application/json")

    @staticmethod
    def _error(status: int, kind: str, message: str, param: str | None = None,
               code: str | None = None) -> Response:
        error: dict[str, Any] = {"type": kind, "message": message}
        if param:
            error["param"] = param
        if code:
            error["code"] = code
        return Response(json.dumps({"error": error}), status, mimetype="application/json")


@contextmanager
def fake_stripe_server() -> Iterator[tuple[FakeStripe, str]]:
    """Serve a FakeStripe on a free loopback port; yields it and its base URL."""
    fake = FakeStripe()
    server = make_server("127.0.0.1", 0, fake, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
