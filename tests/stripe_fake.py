"""A small stateful server that speaks Stripe's wire protocol for the Connect calls we make.

localstripe has no Connect endpoints, so tests point the real `stripe` library
(its own HTTP request layer, nothing patched) at this server instead: form-
encoded nested parameters, bearer-key auth, Stripe's object and error shapes,
and idempotency keys that replay the first response (and refuse a reused key
with different parameters), as Stripe does.

Every request's parameters are checked, at run time, against the `stripe`
library's own TypedDict for that endpoint (generated from Stripe's OpenAPI
spec), so a misspelled or unknown parameter is refused here exactly as Stripe
would refuse it, and the fake cannot drift from the real API.

State changes that happen on Stripe's side -- a customer paying, a bank debit
settling, a refund made in the dashboard, a dispute, an account finishing
onboarding -- are methods (`pay`, `settle_delayed`, `refund_in_dashboard`,
`open_dispute`, `close_dispute`, `update_account`...) that change the fake's
state and return the webhook event Stripe would send; tests post those events
to the app with tests/stripe_events.py.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
import time
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any, Literal, NotRequired, Required, Union, get_args, get_origin
from urllib.parse import parse_qsl

import stripe
from stripe._request_options import RequestOptions
from stripe._stripe_context import StripeContext
from stripe._stripe_object import UntypedStripeObject
from stripe.params import (
    AccountCreateParams,
    AccountLinkCreateParams,
    AccountRetrieveParams,
    ChargeRetrieveParams,
    PaymentIntentRetrieveParams,
    RefundCreateParams,
    TransferCreateParams,
    TransferReversalCreateParams,
)
from stripe.params.checkout import SessionCreateParams, SessionRetrieveParams
from typing_extensions import is_typeddict
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

StripeObject = dict[str, Any]


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """`a[b][c]=v` form keys -> {"a": {"b": {"c": "v"}}} (Stripe's encoding).

    Lists arrive indexed (`a[0][b]=v`) and stay dicts keyed "0", "1"...
    """
    result: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = result
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return result


def _as_list(value: Any) -> list[Any]:
    """An indexed form list ({"0": x, "1": y}) as a Python list, in index order."""
    if isinstance(value, dict):
        return [value[k] for k in sorted(value, key=int) if k.isdigit()]
    return [] if value in (None, "") else [value]


# --- parameter checking against stripe's own TypedDicts --------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why Stripe refuses a request's parameters: its error's message, param and code."""

    message: str
    param: str
    code: str | None = None


#: the request options every *Params dict inherits; they travel as headers, never as params
_OPTIONS = frozenset(RequestOptions.__annotations__)
#: names RequestOptions' annotations use but only import under TYPE_CHECKING
_HINT_NAMES = {"StripeContext": StripeContext, "Mapping": typing.Mapping}
_UNIONS = (Union, types.UnionType)
_LISTS = (list, tuple, Sequence)
_MAPPINGS = (dict, Mapping, UntypedStripeObject)
#: scalar type -> (Stripe's name for it, the wire form it must match, error code)
_SCALARS: dict[Any, tuple[str, re.Pattern[str] | None, str | None]] = {
    str: ("string", None, None),
    int: ("integer", re.compile(r"-?\d+"), "parameter_invalid_integer"),
    bool: ("boolean", re.compile(r"true|false"), None),
    float: ("decimal", re.compile(r"-?\d+(\.\d+)?"), None),
    Decimal: ("decimal", re.compile(r"-?\d+(\.\d+)?"), None),
}
_ANY_SHAPE = frozenset({"scalar", "object", "array", "unset"})


@cache
def _fields(spec: type) -> tuple[dict[str, Any], frozenset[str]]:
    """A params TypedDict's wire fields (name -> type hint) and its required ones.

    Resolved once per class with `get_type_hints(include_extras=True)` so the
    `Required`/`NotRequired` wrappers survive; a wrapper wins over
    `__required_keys__`, which string annotations can get wrong.
    """
    hints = typing.get_type_hints(spec, localns=_HINT_NAMES, include_extras=True)
    if _OPTIONS <= hints.keys():
        hints = {name: hint for name, hint in hints.items() if name not in _OPTIONS}
    declared: frozenset[str] = getattr(spec, "__required_keys__", frozenset())
    required = frozenset(name for name, hint in hints.items()
                         if get_origin(hint) is Required
                         or (name in declared and get_origin(hint) is not NotRequired))
    return hints, required


def check_params(params: Mapping[str, Any], spec: type) -> Refusal | None:
    """The first reason Stripe would refuse `params` (decoded form) for `spec`, or None."""
    return _check_object(params, spec, "")


def _join(path: str, key: str) -> str:
    return f"{path}[{key}]" if path else key


def _bare(hint: Any) -> Any:
    """The type under Required[...], NotRequired[...] and Annotated[...]."""
    while get_origin(hint) in (Required, NotRequired, typing.Annotated):
        hint = get_args(hint)[0]
    return hint


def _check(value: Any, hint: Any, path: str) -> Refusal | None:
    """Check one decoded value against its type hint (dispatch on the hint's kind)."""
    hint = _bare(hint)
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return None
    if origin in _UNIONS:
        return _check_union(value, args, path)
    if origin is Literal:
        return _check_literal(value, args, path)
    if is_typeddict(hint):
        return _check_object(value, hint, path)
    if origin in _LISTS:
        return _check_list(value, args[0] if args else Any, path)
    if origin in _MAPPINGS:
        return _check_mapping(value, args[-1] if args else Any, path)
    return _check_scalar(value, hint, path)


def _check_object(value: Any, spec: type, path: str) -> Refusal | None:
    """A hash: unknown keys first, then missing required ones, then each value."""
    if not isinstance(value, Mapping):
        return Refusal("Invalid object", path)
    hints, required = _fields(spec)
    for key in value:
        if key not in hints:
            return Refusal(f"Received unknown parameter: {_join(path, key)}",
                           _join(path, key), "parameter_unknown")
    for key in hints:
        if key in required and key not in value:
            return Refusal(f"Missing required param: {_join(path, key)}.", _join(path, key),
                           "parameter_missing")
    for key, item in value.items():
        refusal = _check(item, hints[key], _join(path, key))
        if refusal:
            return refusal
    return None


def _check_list(value: Any, item_hint: Any, path: str) -> Refusal | None:
    """An array, which arrives indexed: a[0]=x, a[1][b]=y."""
    if not isinstance(value, Mapping) or not all(k.isdigit() for k in value):
        return Refusal("Invalid array", path)
    for index in sorted(value, key=int):
        refusal = _check(value[index], item_hint, f"{path}[{index}]")
        if refusal:
            return refusal
    return None


def _check_mapping(value: Any, item_hint: Any, path: str) -> Refusal | None:
    """A free-form hash such as metadata: any keys, each value of `item_hint`."""
    if not isinstance(value, Mapping):
        return Refusal("Invalid object", path)
    for key, item in value.items():
        refusal = _check(item, item_hint, _join(path, key))
        if refusal:
            return refusal
    return None


def _wire(option: Any) -> str:
    """How the library encodes a Literal's value on the wire (True -> "true")."""
    return str(option).lower() if isinstance(option, bool) else str(option)


def _one_of(options: Sequence[str]) -> str:
    return options[0] if len(options) == 1 else f"{', '.join(options[:-1])}, or {options[-1]}"


def _check_literal(value: Any, options: tuple[Any, ...], path: str) -> Refusal | None:
    wire = [_wire(option) for option in options]
    if isinstance(value, str) and value in wire:
        return None
    return Refusal(f"Invalid {path}: must be one of {_one_of(wire)}", path)


def _check_scalar(value: Any, hint: Any, path: str) -> Refusal | None:
    """A string, integer, boolean or decimal; other hints (files...) are not checked."""
    name, pattern, code = _SCALARS.get(hint, ("value", None, None))
    if not isinstance(value, str):
        return Refusal(f"Invalid {name}", path) if hint in _SCALARS else None
    if pattern is not None and not pattern.fullmatch(value):
        return Refusal(f"Invalid {name}: {value}", path, code)
    return None


def _shape(hint: Any) -> frozenset[str]:
    """Which wire shapes a hint accepts: scalar, object, array, or unset ("")."""
    hint = _bare(hint)
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return _ANY_SHAPE
    if origin in _UNIONS:
        return frozenset().union(*(_shape(arg) for arg in args))
    if origin is Literal:
        return frozenset({"unset" if arg == "" else "scalar" for arg in args})
    if is_typeddict(hint) or origin in _MAPPINGS:
        return frozenset({"object"})
    if origin in _LISTS:
        return frozenset({"array"})
    return frozenset({"scalar"})


def _shapes_of(value: Any) -> frozenset[str]:
    if value == "":
        return frozenset({"unset", "scalar"})
    if isinstance(value, Mapping):  # a hash, or an indexed array
        return frozenset({"object", "array"})
    return frozenset({"scalar"})


def _check_union(value: Any, alternatives: tuple[Any, ...], path: str) -> Refusal | None:
    """Accept the value if any alternative of its shape accepts it.

    `"Literal['']|Dict[str, str]"` takes "" (unset) or a hash; `"Literal['a']|str"`
    takes any string.  Refused, the first fitting alternative's reason is given.
    """
    shapes = _shapes_of(value)
    refusals = []
    for alternative in alternatives:
        if _shape(alternative) & shapes:
            refusal = _check(value, alternative, path)
            if refusal is None:
                return None
            refusals.append(refusal)
    if refusals:
        return refusals[0]
    expected = next(iter(sorted(_shape(alternatives[-1]) - {"unset"})), "value")
    return Refusal(f"Invalid {'string' if expected == 'scalar' else expected}", path)


# --- the server ----------------------------------------------------------------------


def _now() -> int:
    return int(time.time())


def _list_object(url: str, data: list[StripeObject]) -> StripeObject:
    """Stripe's list envelope, as embedded in objects (charge.refunds)."""
    return {"object": "list", "data": data, "has_more": False, "total_count": len(data),
            "url": url}


def _metadata(params: Mapping[str, Any]) -> dict[str, str]:
    """The metadata hash a request set ("" unsets it, so it is empty)."""
    value = params.get("metadata")
    return dict(value) if isinstance(value, dict) else {}


@dataclass
class FakeStripe:
    """The server's state; tests read it to see what Stripe was asked to do."""

    secret_key: str = "sk_test_fake"
    api_version: str = stripe.api_version
    accounts: dict[str, StripeObject] = field(default_factory=dict)
    sessions: dict[str, StripeObject] = field(default_factory=dict)
    payment_intents: dict[str, StripeObject] = field(default_factory=dict)
    charges: dict[str, StripeObject] = field(default_factory=dict)
    transfers: dict[str, StripeObject] = field(default_factory=dict)
    reversals: dict[str, StripeObject] = field(default_factory=dict)
    refunds: dict[str, StripeObject] = field(default_factory=dict)
    disputes: dict[str, StripeObject] = field(default_factory=dict)
    #: error codes the next transfers fail with (e.g. "balance_insufficient"), in order
    refuse_transfers: list[str] = field(default_factory=list)
    #: error codes the next transfer reversals fail with (e.g. "insufficient_funds"), in order
    refuse_reversals: list[str] = field(default_factory=list)
    #: how many of the next POST answers are lost (a 500 in their place) *after* Stripe did
    #: the work: the object exists, and a later retry with the key gets it back
    lose_answers: int = 0
    #: the platform's available balance; None is unlimited.  Transfers without a
    #: source_transaction draw on it; reversals and won disputes give back to it
    available_balance: int | None = None
    #: every webhook event the fake made, in order
    events: list[StripeObject] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    #: the time objects and events are stamped with (seconds); tests may replace it
    clock: Callable[[], int] = field(default_factory=lambda: _now)
    _replies: dict[str, tuple[str, int, str, str]] = field(default_factory=dict)
    _origins: dict[str, StripeObject] = field(default_factory=dict)
    _request: StripeObject = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _request_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def livemode(self) -> bool:
        return self.secret_key.startswith("sk_live")

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        return self._respond(request)(environ, start_response)

    # --- HTTP: auth, idempotency, routing ----------------------------------------------

    def _respond(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {self.secret_key}":
            return self._error(401, "invalid_request_error", "Invalid API Key provided.")
        raw = (request.get_data(as_text=True) if request.method == "POST"
               else request.query_string.decode())
        params = _nest(parse_qsl(raw, keep_blank_values=True))
        key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
        with self._lock:
            self.requests.append((request.method, request.path, params))
            if key and key in self._replies:
                return self._lost_or(request, self._replay(key, f"{request.path}?{raw}"))
            request_id = f"req_fake{next(self._request_ids):06d}"
            response, executed = self._dispatch(request.method, request.path, params,
                                                {"id": request_id, "idempotency_key": key})
            response.headers["Request-Id"] = request_id
            if key and executed:  # Stripe saves no result for a request that failed validation
                self._replies[key] = (f"{request.path}?{raw}", response.status_code,
                                      response.get_data(as_text=True), request_id)
            return self._lost_or(request, response)

    def _lost_or(self, request: Request, response: Response) -> Response:
        """The answer, or a 500 in its place while `lose_answers` lasts (the library
        retries with the same key, so a loss of every try needs max_network_retries + 1)."""
        if request.method == "POST" and self.lose_answers > 0:
            self.lose_answers -= 1
            return self._error(500, "api_error", "An error occurred with our connection to "
                               "Stripe.")
        return response

    def _replay(self, key: str, fingerprint: str) -> Response:
        """The first response for an idempotency key, or Stripe's refusal of a reuse."""
        first, status, payload, request_id = self._replies[key]
        if first != fingerprint:
            return self._error(400, "idempotency_error", "Keys for idempotent requests can "
                               "only be used with the same parameters they were first "
                               "used with.")
        response = Response(payload, status, mimetype="application/json")
        response.headers["Idempotent-Replayed"] = "true"
        response.headers["Request-Id"] = request_id
        return response

    def _dispatch(self, method: str, path: str, params: dict[str, Any],
                  origin: StripeObject) -> tuple[Response, bool]:
        """(response, whether the endpoint ran) for a request that passed auth."""
        for route in ROUTES:
            match = route.pattern.fullmatch(path) if route.method == method else None
            if match is None:
                continue
            refusal = check_params(params, route.params)
            if refusal:
                return self._refuse(refusal), False
            self._request = origin
            result = route.handler(self, params, *match.groups())
            if isinstance(result, Response):
                return result, True
            return self._render(result, _as_list(params.get("expand"))), True
        return self._error(404, "invalid_request_error",
                           f"Unrecognized request URL ({method}: {path})."), False

    def _render(self, obj: StripeObject, expand: list[str]) -> Response:
        """The object as JSON, with the `expand[]` paths replaced by the objects they name."""
        obj = copy.deepcopy(obj)
        for path in expand:
            if not self._expand(obj, path.split(".")):
                return self._error(400, "invalid_request_error",
                                   f"This property cannot be expanded ({path}).",
                                   param="expand")
        return Response(json.dumps(obj), 200, mimetype="application/json")

    def _expand(self, obj: StripeObject, parts: list[str]) -> bool:
        """Replace the id at the dotted path with its object; False if not expandable."""
        head, rest = parts[0], parts[1:]
        value = obj.get(head)
        if isinstance(value, str) and self._lookup(value) is not None:
            value = obj[head] = copy.deepcopy(self._lookup(value))
        elif not rest:
            return head in obj and value is None  # an unset expandable field stays null
        return not rest or (isinstance(value, dict) and self._expand(value, rest))

    def _lookup(self, object_id: str) -> StripeObject | None:
        for store in (self.accounts, self.sessions, self.payment_intents, self.charges,
                      self.transfers, self.reversals, self.refunds, self.disputes):
            if object_id in store:
                return store[object_id]
        return None

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    # --- accounts ----------------------------------------------------------------------

    def _create_account(self, params: dict[str, Any]) -> StripeObject | Response:
        if params.get("type") not in ("express", "standard", "custom"):
            return self._error(400, "invalid_request_error", "Invalid type.", param="type")
        account_id = self._new_id("acct_fake")
        account = {"id": account_id, "object": "account", "type": params["type"],
                   "country": params.get("country", "US"), "email": params.get("email"),
                   "created": self.clock(), "details_submitted": False,
                   "payouts_enabled": False, "charges_enabled": False,
                   "capabilities": {name: "inactive" for name in
                                    params.get("capabilities") or {}},
                   "requirements": _requirements(False, False),
                   "metadata": _metadata(params)}
        self.accounts[account_id] = account
        return account

    def _retrieve_account(self, params: dict[str, Any], account_id: str
                          ) -> StripeObject | Response:
        return self.accounts.get(account_id) or self._missing("account", account_id, 404)

    def _create_account_link(self, params: dict[str, Any]) -> StripeObject | Response:
        account_id = params["account"]
        if account_id not in self.accounts:
            return self._missing("account", account_id)
        for name in ("refresh_url", "return_url"):
            if not params.get(name):
                return self._refuse(Refusal(f"Missing required param: {name}.", name,
                                            "parameter_missing"))
        created = self.clock()
        return {"object": "account_link", "created": created, "expires_at": created + 300,
                "url": f"https://connect.stripe.test/setup/e/{account_id}/{next(self._ids)}"}

    # --- checkout, payment intents, charges -----------------------------------------------

    def _create_session(self, params: dict[str, Any]) -> StripeObject | Response:
        if params.get("mode") != "payment":
            return self._error(400, "invalid_request_error", "The fake serves "
                               "mode=payment sessions only.", param="mode")
        items = _as_list(params.get("line_items"))
        prices = [item.get("price_data") or {} for item in items]
        if not items or not all(price.get("unit_amount") for price in prices):
            return self._error(400, "invalid_request_error", "Missing line_items (the fake "
                               "prices them with price_data[unit_amount]).",
                               param="line_items")
        if len({price.get("currency") for price in prices}) != 1:
            return self._error(400, "invalid_request_error", "All line items must have the "
                               "same currency.", param="line_items")
        total = sum(int(price["unit_amount"]) * int(item.get("quantity", 1))
                    for item, price in zip(items, prices, strict=True))
        number = next(self._ids)
        intent_data = params.get("payment_intent_data") or {}
        intent = self._new_intent(f"pi_fake{number:06d}", total, prices[0]["currency"],
                                  intent_data)
        session = {"id": f"cs_test_fake{number:06d}", "object": "checkout.session",
                   "mode": "payment", "status": "open", "payment_status": "unpaid",
                   "amount_subtotal": total, "amount_total": total,
                   "currency": intent["currency"], "payment_intent": intent["id"],
                   "created": self.clock(), "expires_at": self.clock() + 86_400,
                   "livemode": self.livemode, "success_url": params.get("success_url"),
                   "cancel_url": params.get("cancel_url"),
                   "url": f"https://checkout.stripe.test/c/pay/cs_test_fake{number:06d}",
                   "metadata": _metadata(params),
                   # not a field of Stripe's session object: what the request asked of
                   # the payment intent, kept for tests to read
                   "payment_intent_data": intent_data}
        self.sessions[session["id"]] = session
        return session

    def _new_intent(self, intent_id: str, amount: int, currency: str,
                    data: Mapping[str, Any]) -> StripeObject:
        intent = {"id": intent_id, "object": "payment_intent", "amount": amount,
                  "amount_received": 0, "currency": currency,
                  "status": "requires_payment_method", "latest_charge": None,
                  "transfer_group": data.get("transfer_group"), "metadata": _metadata(data),
                  "created": self.clock(), "livemode": self.livemode}
        self.payment_intents[intent_id] = intent
        return intent

    def _retrieve_session(self, params: dict[str, Any], session_id: str
                          ) -> StripeObject | Response:
        return self.sessions.get(session_id) or self._missing("checkout.session", session_id,
                                                              404, param="session")

    def _retrieve_intent(self, params: dict[str, Any], intent_id: str
                         ) -> StripeObject | Response:
        return self.payment_intents.get(intent_id) or self._missing(
            "payment_intent", intent_id, 404, param="intent")

    def _retrieve_charge(self, params: dict[str, Any], charge_id: str
                         ) -> StripeObject | Response:
        return self.charges.get(charge_id) or self._missing("charge", charge_id, 404)

    # --- transfers -----------------------------------------------------------------------

    def _create_transfer(self, params: dict[str, Any]) -> StripeObject | Response:
        if params["destination"] not in self.accounts:
            return self._error(400, "invalid_request_error", "No such destination: "
                               f"'{params['destination']}'", param="destination",
                               code="resource_missing")
        if "amount" not in params:
            return self._refuse(Refusal("Missing required param: amount.", "amount",
                                        "parameter_missing"))
        amount, source = int(params["amount"]), params.get("source_transaction")
        if source is not None and source not in self.charges:
            return self._missing("charge", source, param="source_transaction")
        if self.refuse_transfers:
            return self._error(400, "invalid_request_error", "You have insufficient funds in "
                               "your Stripe account for this transfer.",
                               code=self.refuse_transfers.pop(0))
        refused = (self._source_refusal(self.charges[source], amount, params["currency"])
                   if source is not None else self._balance_refusal(amount))
        if refused:
            return refused
        if source is None and self.available_balance is not None:
            self.available_balance -= amount
        transfer = {"id": self._new_id("tr_fake"), "object": "transfer", "amount": amount,
                    "currency": params["currency"], "destination": params["destination"],
                    "source_transaction": source,
                    "transfer_group": params.get("transfer_group"), "amount_reversed": 0,
                    "reversed": False, "created": self.clock(), "livemode": self.livemode,
                    "metadata": _metadata(params)}
        self.transfers[transfer["id"]] = transfer
        return transfer

    def _balance_refusal(self, amount: int) -> Response | None:
        """A transfer from the available balance cannot exceed it (Stripe's rule)."""
        if self.available_balance is None or amount <= self.available_balance:
            return None
        return self._error(400, "invalid_request_error", "You have insufficient funds in "
                           "your Stripe account for this transfer.",
                           code="balance_insufficient")

    def _source_refusal(self, charge: StripeObject, amount: int, currency: str
                        ) -> Response | None:
        """A transfer with source_transaction draws on that charge, not on the balance:
        it must be the charge's currency, and all transfers from one charge together
        cannot exceed the charge's amount."""
        if charge["status"] == "failed":
            return self._error(400, "invalid_request_error", f"The charge {charge['id']} "
                               "failed; it cannot fund a transfer.",
                               param="source_transaction")
        if currency != charge["currency"]:
            return self._error(400, "invalid_request_error", "The currency of "
                               f"source_transaction's balance transaction "
                               f"({charge['currency']}) must be the same as the transfer "
                               f"currency ({currency}).", param="currency")
        left = charge["amount"] - sum(t["amount"] for t in self.transfers.values()
                                      if t["source_transaction"] == charge["id"])
        if amount <= left:
            return None
        return self._error(400, "invalid_request_error", "Insufficient funds in the source "
                           f"transaction {charge['id']}: {left} left to transfer.",
                           param="amount", code="balance_insufficient")

    def _create_reversal(self, params: dict[str, Any], transfer_id: str
                         ) -> StripeObject | Response:
        transfer = self.transfers.get(transfer_id)
        if transfer is None:
            return self._missing("transfer", transfer_id, 404, param="id")
        if self.refuse_reversals:
            return self._error(400, "invalid_request_error", "The connected account has "
                               "insufficient funds to reverse this transfer.",
                               code=self.refuse_reversals.pop(0))
        left = transfer["amount"] - transfer["amount_reversed"]
        amount = int(params.get("amount", left))
        if amount > left:
            return self._error(400, "invalid_request_error", "Reversal exceeds the transfer.",
                               param="amount")
        transfer["amount_reversed"] += amount
        transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
        if self.available_balance is not None:
            self.available_balance += amount  # the money comes back to the platform
        reversal = {"id": self._new_id("trr_fake"), "object": "transfer_reversal",
                    "amount": amount, "currency": transfer["currency"],
                    "transfer": transfer_id, "created": self.clock(),
                    "metadata": _metadata(params)}
        self.reversals[reversal["id"]] = reversal
        return reversal

    # --- refunds ---------------------------------------------------------------------------

    def _create_refund(self, params: dict[str, Any]) -> StripeObject | Response:
        charge_id: str | None = params.get("charge")
        intent_id: str | None = params.get("payment_intent")
        if charge_id is None and intent_id is None:
            return self._refuse(Refusal("One of the following params should be provided for "
                                        "this request: payment_intent or charge.",
                                        "payment_intent", "parameter_missing"))
        if charge_id is not None and charge_id not in self.charges:
            return self._missing("charge", charge_id, param="charge")
        if charge_id is None and intent_id is not None:
            if intent_id not in self.payment_intents:
                return self._missing("payment_intent", intent_id, param="payment_intent")
            charge_id = self.payment_intents[intent_id]["latest_charge"]
            if charge_id is None:
                return self._uncharged_refund(params, intent_id)
        charge = self.charges[str(charge_id)]
        amount = int(params.get("amount", charge["amount"] - charge["amount_refunded"]))
        refusal = self._refund_refusal(charge, amount)
        if refusal:
            return self._refuse(refusal)
        refund = self._refund(charge, amount, params.get("reason"), _metadata(params))
        self._origins[refund["id"]] = dict(self._request)
        return refund

    def _uncharged_refund(self, params: dict[str, Any], intent_id: str) -> StripeObject:
        """A refund of a payment intent the test never paid with `pay()` (it posted a
        hand-made webhook instead): recorded, with no charge to update."""
        intent = self.payment_intents[intent_id]
        amount = int(params["amount"]) if "amount" in params else intent["amount"]
        refund: StripeObject = {
            "id": self._new_id("re_fake"), "object": "refund", "amount": amount,
            "charge": None, "currency": intent["currency"], "payment_intent": intent_id,
            "reason": params.get("reason"), "status": "succeeded", "created": self.clock(),
            "metadata": _metadata(params)}
        self.refunds[refund["id"]] = refund
        return refund

    def _refund_refusal(self, charge: StripeObject, amount: int) -> Refusal | None:
        """Why Stripe would not refund `amount` of the charge, or None."""
        left = charge["amount"] - charge["amount_refunded"]
        if charge["status"] != "succeeded":
            return Refusal(f"Charge {charge['id']} has not succeeded; it cannot be refunded.",
                           "charge")
        if any(d["charge"] == charge["id"] and d["status"] in ("needs_response",
                                                               "under_review", "lost")
               for d in self.disputes.values()):
            return Refusal(f"Charge {charge['id']} has been charged back; cannot issue a "
                           "refund.", "charge", "charge_disputed")
        if left == 0:
            return Refusal(f"Charge {charge['id']} has already been refunded.", "charge",
                           "charge_already_refunded")
        if amount < 1:
            return Refusal("This value must be greater than or equal to 1.", "amount")
        if amount > left:
            return Refusal(f"Refund amount ({amount}) is greater than unrefunded amount on "
                           f"charge ({left})", "amount")
        return None

    def _refund(self, charge: StripeObject, amount: int, reason: str | None,
                metadata: dict[str, str]) -> StripeObject:
        """Refund part of a charge: a refund object, and the charge's running totals."""
        refund = {"id": self._new_id("re_fake"), "object": "refund", "amount": amount,
                  "charge": charge["id"], "currency": charge["currency"],
                  "payment_intent": charge["payment_intent"], "reason": reason,
                  "status": "succeeded", "created": self.clock(), "metadata": metadata}
        self.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        charge["refunds"]["data"].insert(0, refund)  # Stripe lists the newest first
        charge["refunds"]["total_count"] += 1
        return refund

    # --- what happens on Stripe's side: each returns the webhook event ------------------

    def pay(self, session_id: str, *, delayed: bool = False) -> list[StripeObject]:
        """The customer pays the checkout session: the charge is made for its payment
        intent.  A card settles at once (payment_status "paid"); a bank debit
        (`delayed`) completes the session "unpaid" until `settle_delayed`."""
        with self._lock:
            session = self._open_session(session_id)
            intent = self.payment_intents[session["payment_intent"]]
            charge = self._new_charge(intent, "pending" if delayed else "succeeded")
            intent.update(latest_charge=charge["id"],
                          status="processing" if delayed else "succeeded",
                          amount_received=0 if delayed else intent["amount"])
            session.update(status="complete", payment_status="unpaid" if delayed else "paid")
            return [self._event("checkout.session.completed", session)]

    def settle_delayed(self, session_id: str, succeeded: bool) -> StripeObject:
        """A delayed (bank debit) payment settles: async_payment_succeeded, or
        async_payment_failed with the session still "complete" and "unpaid"."""
        with self._lock:
            session = self.sessions[session_id]
            intent = self.payment_intents[session["payment_intent"]]
            charge = self.charges.get(intent["latest_charge"] or "")
            if charge is None or charge["status"] != "pending":
                raise ValueError(f"{session_id} has no delayed payment waiting to settle")
            if succeeded:
                charge.update(status="succeeded", paid=True)
                intent.update(status="succeeded", amount_received=intent["amount"])
                session["payment_status"] = "paid"
                return self._event("checkout.session.async_payment_succeeded", session)
            charge.update(status="failed", failure_code="insufficient_funds",
                          failure_message="The customer's account has insufficient funds.")
            intent["status"] = "requires_payment_method"
            return self._event("checkout.session.async_payment_failed", session)

    def charge_event(self, charge_id: str, event_type: str = "charge.succeeded"
                     ) -> StripeObject:
        """An event about a charge as it is now (charge.succeeded, charge.failed...)."""
        with self._lock:
            return self._event(event_type, self.charges[charge_id])

    def refund_in_dashboard(self, payment_or_charge_id: str, amount: int) -> StripeObject:
        """Someone refunds in Stripe's dashboard, not through our API: the charge.refunded
        event is the only way the app hears of it."""
        with self._lock:
            charge = self._charge_of(payment_or_charge_id)
            refusal = self._refund_refusal(charge, amount)
            if refusal:
                raise ValueError(refusal.message)
            refund = self._refund(charge, amount, None, {})
            self._origins[refund["id"]] = {"id": self._new_id("req_dash"),
                                           "idempotency_key": None}
            return self._refund_event(charge)

    def refund_event(self, charge_id: str) -> StripeObject:
        """The charge.refunded event Stripe sends after a refund made through the API."""
        with self._lock:
            return self._refund_event(self.charges[charge_id])

    def open_dispute(self, charge_id: str, amount: int | None = None) -> StripeObject:
        """The cardholder disputes the charge: Stripe takes the amount from the
        platform's balance at once and the charge can no longer be refunded."""
        with self._lock:
            charge = self.charges[charge_id]
            if charge["status"] != "succeeded":
                raise ValueError(f"{charge_id} has not succeeded; it cannot be disputed")
            created = self.clock()
            dispute = {"id": self._new_id("dp_fake"), "object": "dispute",
                       "amount": charge["amount"] if amount is None else amount,
                       "charge": charge_id, "payment_intent": charge["payment_intent"],
                       "currency": charge["currency"], "status": "needs_response",
                       "reason": "fraudulent", "is_charge_refundable": False,
                       "created": created, "livemode": self.livemode, "metadata": {},
                       "balance_transactions": [],
                       "evidence_details": {"due_by": created + 7 * 86_400,
                                            "has_evidence": False, "past_due": False,
                                            "submission_count": 0}}
            self.disputes[dispute["id"]] = dispute
            charge["disputed"] = True
            if self.available_balance is not None:
                self.available_balance -= dispute["amount"]
            return self._event("charge.dispute.created", dispute)

    def close_dispute(self, dispute_id: str, won: bool) -> StripeObject:
        """The dispute is decided: won gives the amount back to the platform."""
        with self._lock:
            dispute = self.disputes[dispute_id]
            previous = {"status": dispute["status"]}
            dispute["status"] = "won" if won else "lost"
            if won and self.available_balance is not None:
                self.available_balance += dispute["amount"]
            return self._event("charge.dispute.closed", dispute, previous=previous)

    def update_account(self, account_id: str, *, details_submitted: bool,
                       payouts_enabled: bool, charges_enabled: bool | None = None
                       ) -> StripeObject:
        """The member's business moves on in onboarding (GET shows it) and Stripe sends
        account.updated, with `account` naming the connected account."""
        with self._lock:
            account = self.accounts[account_id]
            before = copy.deepcopy(account)
            account.update(details_submitted=details_submitted,
                           payouts_enabled=payouts_enabled,
                           requirements=_requirements(details_submitted, payouts_enabled))
            if charges_enabled is not None:
                account["charges_enabled"] = charges_enabled
            account["capabilities"] = {name: "active" if payouts_enabled else "inactive"
                                       for name in account["capabilities"]}
            previous = {k: v for k, v in before.items() if account[k] != v}
            return self._event("account.updated", account, account=account_id,
                               previous=previous)

    def _open_session(self, session_id: str) -> StripeObject:
        session = self.sessions[session_id]
        if session["status"] != "open":
            raise ValueError(f"{session_id} is {session['status']}; only an open session "
                             "can be paid")
        return session

    def _new_charge(self, intent: StripeObject, status: str) -> StripeObject:
        charge_id = self._new_id("ch_fake")
        charge = {"id": charge_id, "object": "charge", "amount": intent["amount"],
                  "amount_captured": intent["amount"], "amount_refunded": 0,
                  "captured": True, "created": self.clock(), "currency": intent["currency"],
                  "disputed": False, "failure_code": None, "failure_message": None,
                  "livemode": self.livemode, "metadata": dict(intent["metadata"]),
                  "paid": status == "succeeded", "payment_intent": intent["id"],
                  "refunded": False,
                  "refunds": _list_object(f"/v1/charges/{charge_id}/refunds", []),
                  "status": status, "transfer_group": intent["transfer_group"]}
        self.charges[charge_id] = charge
        return charge

    def _charge_of(self, payment_or_charge_id: str) -> StripeObject:
        """The charge named, or the latest charge of the payment intent named."""
        if payment_or_charge_id in self.charges:
            return self.charges[payment_or_charge_id]
        charge_id = self.payment_intents[payment_or_charge_id]["latest_charge"]
        if charge_id is None:
            raise ValueError(f"{payment_or_charge_id} has not been paid")
        return self.charges[charge_id]

    def _refund_event(self, charge: StripeObject) -> StripeObject:
        """charge.refunded for the charge's latest refund, with what it changed."""
        if not charge["refunds"]["data"]:
            raise ValueError(f"{charge['id']} has no refund")
        latest = charge["refunds"]["data"][0]
        previous: StripeObject = {"amount_refunded": charge["amount_refunded"]
                                  - latest["amount"]}
        if charge["refunded"]:
            previous["refunded"] = False
        return self._event("charge.refunded", charge, previous=previous,
                           request=self._origins.get(latest["id"]))

    def _event(self, event_type: str, obj: StripeObject, *, account: str | None = None,
               previous: StripeObject | None = None, request: StripeObject | None = None
               ) -> StripeObject:
        """A webhook event as Stripe shapes it, recorded in `events`; a copy is returned
        so a test that edits it cannot rewrite the record."""
        data: StripeObject = {"object": copy.deepcopy(obj)}
        if previous:
            data["previous_attributes"] = previous
        event: StripeObject = {
            "id": self._new_id("evt_fake"), "object": "event",
            "api_version": self.api_version, "created": self.clock(), "data": data,
            "livemode": self.livemode, "pending_webhooks": 1,
            "request": request or {"id": None, "idempotency_key": None},
            "type": event_type}
        if account:
            event["account"] = account
        self.events.append(event)
        return copy.deepcopy(event)

    # --- errors -------------------------------------------------------------------------

    def _missing(self, kind: str, object_id: str, status: int = 400, param: str | None = None
                 ) -> Response:
        return self._error(status, "invalid_request_error", f"No such {kind}: '{object_id}'",
                           param=param or kind, code="resource_missing")

    def _refuse(self, refusal: Refusal) -> Response:
        return self._error(400, "invalid_request_error", refusal.message,
                           param=refusal.param, code=refusal.code)

    @staticmethod
    def _error(status: int, kind: str, message: str, param: str | None = None,
               code: str | None = None) -> Response:
        error: dict[str, Any] = {"type": kind, "message": message}
        if param:
            error["param"] = param
        if code:
            error["code"] = code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        return Response(json.dumps({"error": error}), status, mimetype="application/json")


def _requirements(submitted: bool, payouts: bool) -> StripeObject:
    """An account's `requirements` hash for where it is in onboarding."""
    due = [] if submitted else ["business_type", "external_account", "tos_acceptance.date",
                                "tos_acceptance.ip"]
    reason = None if payouts else (
        "requirements.pending_verification" if submitted else "requirements.past_due")
    return {"currently_due": due, "eventually_due": list(due), "past_due": list(due),
            "disabled_reason": reason}


@dataclass(frozen=True)
class _Route:
    """One endpoint: its method, path pattern, the stripe params TypedDict its
    parameters must fit, and the FakeStripe method that serves it."""

    method: str
    pattern: re.Pattern[str]
    params: type
    handler: Callable[..., StripeObject | Response]


def _route(method: str, path: str, params: type, handler: Callable[..., Any]) -> _Route:
    return _Route(method, re.compile(path.replace("{id}", "([^/]+)")), params, handler)


ROUTES = (
    _route("POST", "/v1/accounts", AccountCreateParams, FakeStripe._create_account),
    _route("GET", "/v1/accounts/{id}", AccountRetrieveParams, FakeStripe._retrieve_account),
    _route("POST", "/v1/account_links", AccountLinkCreateParams,
           FakeStripe._create_account_link),
    _route("POST", "/v1/checkout/sessions", SessionCreateParams, FakeStripe._create_session),
    _route("GET", "/v1/checkout/sessions/{id}", SessionRetrieveParams,
           FakeStripe._retrieve_session),
    _route("GET", "/v1/payment_intents/{id}", PaymentIntentRetrieveParams,
           FakeStripe._retrieve_intent),
    _route("GET", "/v1/charges/{id}", ChargeRetrieveParams, FakeStripe._retrieve_charge),
    _route("POST", "/v1/transfers", TransferCreateParams, FakeStripe._create_transfer),
    _route("POST", "/v1/transfers/{id}/reversals", TransferReversalCreateParams,
           FakeStripe._create_reversal),
    _route("POST", "/v1/refunds", RefundCreateParams, FakeStripe._create_refund),
)


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
