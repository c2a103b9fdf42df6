"""Bad input over every form: never a server error, and a refusal writes nothing.

Every POST route of the app (the JSON API under /api/ has its own schemathesis suite)
is posted by a visitor who may use it -- the first of owner, partner, crew,
coordinator and bystander the authorization matrix lets through -- with a valid form
(the matrix's FORMS, or BASELINES here) that hypothesis then spoils: fields dropped,
sent twice, or replaced by junk of their kind (dates that do not exist, local times the
clocks skip, numbers out of any range, negative and huge money, wrong choices, ids of
the wrong thing or of nothing, files that are not pictures, control characters, text
long enough to hurt), plus fields nobody asked for and wrong ids in the URL, asking
for HTML or (as scripts do) for JSON.

Every answer must be below 500, and every refusal (a 4xx, including a form shown again
with its errors) must leave every table as it was: `table_digest` fingerprints each
table's full content.  One world (the matrix's `build_world`) serves the whole module,
so a request that succeeds changes what the next ones meet; the routes that end a
visitor's part in the cluster run last.  Bounded: FUZZ_EXAMPLES per route (default
12), no deadline, derandomized when CI=true.
"""

from __future__ import annotations

import io
import os
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session
from werkzeug.datastructures import MultiDict

from marketplace.scope import EXTENSION as SCOPE
from marketplace.scope import bind
from tests.conftest import IN_CI, empty_database, login, make_world, own_session
from tests.matrix_world import (
    MatrixWorld,
    build_world,
    png_bytes,
    serve_fake_stripe,
    stripe_mode_app,
    table_digest,
    url_of,
)
from tests.test_authorization_matrix import FILLED, FORMS, LOGIN, MATRIX, ROLES

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "12")),
    deadline=None,
    derandomize=IN_CI,
    database=None if IN_CI else settings.default.database,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.large_base_example],
)

Form = Callable[[dict[str, Any]], dict[str, Any]]

#: Valid forms for the POST routes the matrix does not fill; {} = a one-button action.
BASELINES: dict[str, Form] = {
    "auth.accept_invite": lambda i: {"name": "Erin", "password": "a long passphrase"},
    "auth.login": lambda i: {"email": "a@alpha.test", "password": "correct horse battery"},
    "auth.logout": lambda i: {},
    "auth.forgot_password": lambda i: {"email": "crew@alpha.test"},
    "auth.reset_password": lambda i: {"password": "another long passphrase"},
    "auth.start_cluster": lambda i: {
        "cluster_name": "Hill Co-op", "currency": "CAD", "default_locale": "en_CA",
        "timezone": "America/Toronto", "unit_system": "metric", "name": "Hana",
        "email": "hana@hill.test", "password": "a long passphrase"},
    "clusters.account": lambda i: {"locale": "fr", "timezone": "Europe/Paris",
                                   "unit_system": "imperial"},
    "clusters.accept_agreement": lambda i: {"version": str(i["version"]), "confirm": "y"},
    "notifications.mark_read": lambda i: {"through": "1", "next": "/notifications"},
    "clusters.edit_agreement": lambda i: {
        "purpose": "Share overflow work, v3.", "scope_overflow_jobs": "y",
        "scope_equipment": "y", "scope_joint_bids": "y", "referral_fee_percent": "5",
        "platform_fee_percent": "1", "sunset_on": "2030-01-01", "exit_notice_days": "30",
        "information_rules": "No bid prices across the barrier.",
        "min_coverage-mowing": "1000000.00"},
    "clusters.cluster_settings": lambda i: {
        "cluster_name": "Valley", "currency": "CAD", "default_locale": "en_CA",
        "timezone": "America/Toronto", "unit_system": "metric"},
    "clusters.member_invites": lambda i: {"business_name": "Eta Sod", "email": "h@eta.test"},
    "clusters.create_api_token": lambda i: {"name": "Spreadsheet sync"},
    "clusters.revoke_api_token": lambda i: {},
    "clusters.save_push_preferences": lambda i: {
        "new_jobs": "y", "bookings": "y", "quiet": "y", "quiet_start": "22:00",
        "quiet_end": "06:30", "quiet_new_jobs": "skip", "email_new_jobs": "y",
        "email_money": "y", "email_new_jobs_when": "digest", "digest_time": "07:00"},
    "push.subscribe": lambda i: {},
    "mail.unsubscribe": lambda i: {"List-Unsubscribe": "One-Click"},  # RFC 8058 body
    "mail.try_again": lambda i: {},
    "push.unsubscribe": lambda i: {},
    "clusters.edit_member": lambda i: {
        "name": "Alpha Lawns", "trades": "mowing", "base_lat": "43.7", "base_lng": "-79.4",
        "service_radius": "50", "certifications": "ISA arborist"},
    "jobs.claim": lambda i: {},
    "jobs.confirm": lambda i: {},
    "jobs.report_done": lambda i: {},
    "jobs.confirm_share": lambda i: {},
    "jobs.submit_joint": lambda i: {},
    "equipment.new": lambda i: _listing(),
    "equipment.edit": lambda i: _listing(),
    "equipment.new_co_owned": lambda i: {
        **_listing(), f"share-{i['member_a']}": "50", f"share-{i['member_b']}": "50"},
    "equipment.approve": lambda i: {},
    "equipment.check_out": lambda i: {"meter": "120.5", "note": "Clean", "photo": PHOTO},
    "equipment.return_machine": lambda i: {"meter": "124", "note": "Fine"},
    "equipment.release": lambda i: {},
    "equipment.answer_swap": lambda i: {},
    "equipment.renew_feed": lambda i: {},
    "clusters.exit.agreed_value": lambda i: {"agreed_value": "45000.00"},
    "ledger.draft": lambda i: {},
    "ledger.approve": lambda i: {"reference-1": "Cheque 42"},
    "payouts.setup": lambda i: {},
    "payouts.request_payment": lambda i: {},
    "payouts.webhook": lambda i: {"id": "evt_1", "type": "account.updated"},
}

#: Marks a field as a file upload in a baseline (a real PNG).
PHOTO = "<photo>"


def _listing() -> dict[str, Any]:
    return {
        "name": "Kubota KX040", "kind": "mini_excavator", "description": "Rubber tracks",
        "photo": PHOTO, "locality": "Annex", "base_lat": "43.65", "base_lng": "-79.38",
        "hour_rate": "40.00", "day_rate": "250.00", "granularity_minutes": "30",
        "min_minutes": "60", "max_minutes": "4320", "buffer_minutes": "30",
        "timezone": "America/Toronto", "needs_approval": "y", "cancel_cutoff_hours": "24",
        "cancel_fee": "50", "opens-0": "07:00", "closes-0": "18:00", "opens-5": "08:00",
        "closes-5": "12:00"}


#: Who posts a route whose every matrix visitor is refused (the joint bid's parties).
ACTORS = {"jobs.confirm_share": "joint_partner", "jobs.submit_joint": "joint_lead"}
PREFERENCE = ("owner", "partner", "crew", "coordinator", "bystander")
#: Routes that end a visitor's part (a new agreement version, an exit, a log-out, a
#: changed password or cluster): fuzzed last, so the others meet a working cluster.
LAST = ("auth.reset_password", "clusters.cluster_settings", "clusters.edit_agreement",
        "clusters.give_exit_notice", "auth.logout")


def actor(endpoint: str) -> str:
    """The first visitor the matrix lets through this route (with a valid form if the
    matrix fills it), so the junk reaches the form and the service, not only the guard."""
    if endpoint in ACTORS:
        return ACTORS[endpoint]
    _target, *cells = FILLED.get((endpoint, "POST")) or MATRIX[(endpoint, "POST")]
    answers = dict(zip(ROLES, cells, strict=True))
    return next((r for r in PREFERENCE if answers[r] not in (403, 404, LOGIN)), "owner")


def fuzzed_routes() -> list[str]:
    """Every POST route of the matrix (which leaves the JSON API to tests/api/), in table
    order, the LAST ones last."""
    routes = [endpoint for endpoint, method in MATRIX if method == "POST"]
    return sorted(routes, key=lambda e: LAST.index(e) + 1 if e in LAST else 0)


def baseline(endpoint: str) -> Form:
    return FORMS.get((endpoint, "POST")) or BASELINES[endpoint]


# --- junk ----------------------------------------------------------------------------------

NASTY = ("", " ", "\x00", "a\x00b", "²", "①", "٣", "１２", "-1", "0", "-0", "1e309", "nan",
         "inf", "-inf", "9" * 40, "x" * 5000, "<script>alert(1)</script>", "' OR 1=1 --",
         "\u202egnp.exe", "🙂" * 50, "\r\n", "%00", "../../etc/passwd", "{{7*7}}", "null",
         "[]", "\ud7ff\ufffe\uffff", "\x1b[31m", "\t\x0b\x0c", "sNaN", "Infinity", "-Inf")
#: Values that are right for some choice field somewhere: the wrong choice here.
CHOICES = ("handoff", "bid_window", "week", "day", "paused", "active", "retired", "crew",
           "owner", "coordinator", "CAD", "EUR", "XXX", "en", "fr", "xx_XX", "metric",
           "imperial", "credit", "charge", "mower", "15", "30", "45", "60", "5", "6", "y")
TIMEZONES = ("Mars/Olympus", "/etc/localtime", "../../../../etc/passwd", "UTC\x00",
             "Europe/", "EST5EDT", "posixrules", "Factory", "America/Toronto" * 20, "+05:00")
DATES = ("2026-02-30", "2026-13-01", "0000-01-01", "0001-01-01", "9999-12-31", "2026-1-1",
         "26-06-01", "2026/06/01", "2026-06-01T10:00", "+10000-01-01", "-2026-01-01")
#: Local times that never happen in Toronto (clocks spring forward) or happen twice.
DATETIMES = ("2027-03-14T02:30", "2028-03-12T02:00", "2026-11-01T01:30", "2027-11-07T01:15",
             "9999-12-31T23:59", "0001-01-01T00:00", "2026-06-01T24:00", "2026-06-01T10:61",
             "2026-06-01 10:00", "2026-06-01T10:00:00Z", "2026-06-01T10:00+05:00")
MONEY = ("-1.00", "-0.01", "0.001", "12.345", "99999999999999999999999.99", "1,234.56",
         "1.234,56", "1 234,56", "€5", "5 €", "1e3", "NaN", "0x10", "1_000", "٣٫٥")
MONEY_FIELDS = {"price", "value", "amount", "hour_rate", "day_rate", "damage", "cancel_fee",
                "referral_fee_percent", "platform_fee_percent", "coverage",
                "min_coverage-mowing"}
BIG = (2**31, 2**31 - 1, 2**53 + 1, 2**63, 2**64, 10**30)

generic = st.one_of(
    st.sampled_from(NASTY), st.sampled_from(CHOICES),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
    st.integers(1, 70_000).map(lambda n: "é" * n),
)
numbers = st.one_of(st.integers().map(str), st.sampled_from(BIG).map(str),
                    st.floats().map(repr), st.sampled_from(("-0", "1e-400", "²", "١٢")))
dates = st.one_of(st.dates().map(lambda d: d.isoformat()), st.sampled_from(DATES))
datetimes = st.one_of(st.datetimes().map(lambda d: d.isoformat(timespec="minutes")),
                      st.sampled_from(DATETIMES))


def _bomb_png() -> bytes:
    """A PNG header claiming 40 000 x 40 000 pixels: a decompression bomb to any decoder."""
    header = struct.pack(">IIBBBBB", 40_000, 40_000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)) + b"\x00" * 16)


def _not_pictures() -> tuple[bytes, ...]:
    png = png_bytes()
    return (b"", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", b"<svg onload=alert(1)></svg>",
            png[:30], png[:8] + b"\xff" * 64, _bomb_png(), b"%PDF-1.4\n", b"MZ\x90\x00",
            b"\xff\xd8\xff\xe0" + b"\x00" * 40, b"\x00" * (5 * 1024 * 1024 + 1))


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart form (made fresh per request: streams are read once)."""

    content: bytes
    filename: str
    content_type: str

    def part(self) -> tuple[io.BytesIO, str, str]:
        return io.BytesIO(self.content), self.filename, self.content_type


uploads = st.builds(
    Upload,
    st.one_of(st.sampled_from(_not_pictures()), st.binary(max_size=2000)),
    st.sampled_from(("photo.png", "../../x.png", "", "a\x00.png", "ñandú.jpg", "x" * 300,
                     "photo.php")),
    st.sampled_from(("image/png", "image/jpeg", "text/html", "application/octet-stream", "")),
)


#: What a valid value gets mixed with: it still passes most checks, so it reaches the
#: service and the database (where a NUL, for one, is refused by PostgreSQL).
TAINTS = ("\x00", "\u202e", "\u0301", "🙂", "\r\n", "'\"<>&", "\t", "\x7f", "\ufeff",
          "x" * 5000)


def tainted(valid: str) -> st.SearchStrategy[str]:
    """The valid value with something slipped in front, inside or after it."""
    return st.builds(lambda taint, at: valid[:at] + taint + valid[at:],
                     st.sampled_from(TAINTS), st.integers(0, len(valid)))


def junk_for(name: str, valid: Any) -> st.SearchStrategy[Any]:
    """Bad values for one field: of the field's own kind, the valid value with something
    slipped in, or anything at all."""
    text = "" if valid == PHOTO else str(valid)
    if valid == PHOTO:
        kind: st.SearchStrategy[Any] = uploads
    elif re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d", text):
        kind = datetimes
    elif re.fullmatch(r"\d{4}-\d\d-\d\d", text):
        kind = dates
    elif name in MONEY_FIELDS:
        kind = st.one_of(st.sampled_from(MONEY), numbers)
    elif name == "timezone":
        kind = st.sampled_from(TIMEZONES)
    elif re.fullmatch(r"-?\d+(\.\d+)?", text):
        kind = numbers
    elif re.fullmatch(r"\d\d:\d\d", text):
        kind = st.sampled_from(("24:00", "07:60", "99:99", "²:00", "7", "-1:00", "00:00"))
    else:
        kind = st.nothing()
    return st.one_of(kind, kind, tainted(text) if text else kind, generic, uploads)


@st.composite
def spoiled(draw: st.DrawFn, valid: dict[str, Any], ids: dict[str, Any]
            ) -> list[tuple[str, Any]]:
    """The valid form with some fields dropped, doubled or replaced, and extra fields."""
    pairs: list[tuple[str, Any]] = []
    for name, value in valid.items():
        values = value if isinstance(value, list) else [value]
        how = draw(st.sampled_from(("keep", "keep", "junk", "junk", "drop", "twice")))
        if how == "keep":
            pairs += [(name, v) for v in values]
        elif how == "junk":
            pairs.append((name, draw(junk_for(name, values[0]))))
        elif how == "twice":
            pairs += [(name, values[0]), (name, draw(junk_for(name, values[0])))]
    names = st.one_of(
        st.sampled_from(("share-0", f"share-{ids['member_c']}", "share-x", "share-²",
                         "reference-²", f"reference-{10**30}", "opens-9", "closes--1",
                         "csrf_token", "id", "member_id", "cluster_id", "status", "role")),
        st.text(max_size=12))
    extra = draw(st.lists(st.tuples(names, st.one_of(generic, numbers)), max_size=3))
    if pairs == [(n, v) for n, v in valid.items() if not isinstance(v, list)] and not extra:
        extra = [("unexpected", "\x00")]  # the valid form itself proves nothing here
    return pairs + extra


@st.composite
def url_ids(draw: st.DrawFn, ids: dict[str, Any], target: str) -> dict[str, Any]:
    """Usually the world's ids; sometimes the URL names something else or nothing."""
    value = ids.get(target)
    if isinstance(value, int) and draw(st.integers(0, 3)) == 0:
        others = sorted({v for v in ids.values() if isinstance(v, int)})
        return {**ids, target: draw(st.one_of(st.sampled_from(BIG), st.sampled_from(others),
                                              st.just(0)))}
    if target == "month" and draw(st.integers(0, 3)) == 0:
        return {**ids, "month": draw(st.sampled_from(("2026-13", "0000-00", "9999-12",
                                                      "abc", "2026-1", "²⁰²⁶-01")))}
    return ids


# --- the world -----------------------------------------------------------------------------


@dataclass
class Fuzzed:
    app: Flask
    session: Session
    world: MatrixWorld


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory, _pg_engine: Engine | None
           ) -> Iterator[Fuzzed]:
    """One world for the whole module (building one per route would cost a minute)."""
    directory = tmp_path_factory.mktemp("fuzz")
    with empty_database(directory, _pg_engine) as url, serve_fake_stripe() as stripe, \
            own_session(url) as session:
        app = stripe_mode_app(url, directory / "uploads", stripe)
        bind(session, app.extensions[SCOPE])  # the world's session acts as the app's
        try:
            world = build_world(session, make_world(session), directory / "uploads")
            yield Fuzzed(app, session, world)
        finally:
            app.extensions["engine"].dispose()


def _client(fuzz: Fuzzed, role: str) -> FlaskClient:
    client = fuzz.app.test_client()
    user = fuzz.world.users[role]
    if user is not None:
        login(client, user)
    return client


def _multidict(pairs: list[tuple[str, Any]]) -> MultiDict[str, Any]:
    """The form as the test client sends it (multipart as soon as a file is in it)."""
    def value(v: Any) -> Any:
        if v == PHOTO:
            return Upload(png_bytes(), "photo.png", "image/png").part()
        return v.part() if isinstance(v, Upload) else v
    return MultiDict([(name, value(v)) for name, v in pairs])


def _changed(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]
             ) -> dict[str, tuple[int, int]]:
    return {name: (before[name][0], after[name][0]) for name in before
            if before[name] != after[name]}


# --- the tests -----------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", fuzzed_routes())
def test_bad_input_is_refused_cleanly(endpoint: str, fuzzed: Fuzzed) -> None:
    target = MATRIX[(endpoint, "POST")][0]
    client = _client(fuzzed, actor(endpoint))
    ids = fuzzed.world.ids
    before = table_digest(fuzzed.session)

    @FUZZ
    @given(st.data())
    def attempt(data: st.DataObject) -> None:
        nonlocal before
        pairs = data.draw(spoiled(baseline(endpoint)(ids), ids), label="form")
        url = url_of(fuzzed.app, endpoint, target, data.draw(url_ids(ids, target)))
        accept = data.draw(st.sampled_from(("text/html", "text/html", "application/json")))
        note(f"POST {url} (Accept: {accept})")
        response = client.post(url, data=_multidict(pairs), headers={"Accept": accept})
        body = response.get_data(as_text=True)
        assert response.status_code < 500, body[:3000]
        after = table_digest(fuzzed.session)
        changed, before = _changed(before, after), after
        if 400 <= response.status_code < 500:
            assert changed == {}, f"refused with {response.status_code} but wrote {changed}"

    attempt()


def test_every_post_route_is_fuzzed(fuzzed: Fuzzed) -> None:
    """A new form route fails here until it has a valid form to spoil."""
    routes = {rule.endpoint for rule in fuzzed.app.url_map.iter_rules()
              if "POST" in (rule.methods or ()) and not rule.rule.startswith("/api/")}
    assert sorted(routes - set(fuzzed_routes())) == []
    for endpoint in routes:
        assert (endpoint, "POST") in FORMS or endpoint in BASELINES, endpoint
