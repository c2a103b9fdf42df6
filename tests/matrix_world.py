"""The authorization matrix's world, shared with the bad-input suites (tests/security/).

`build_world` makes real objects of every kind in one cluster through the services
(jobs in every state, bids, machines, bookings, a rotation, a settled month, secret
links); `url_of` fills a route's URL with them; `table_digest` fingerprints every table
so a test can tell that a refused request wrote nothing; `stripe_mode_app` runs the app
against tests/stripe_fake.py, so the payout routes do real work instead of answering
"offline ledger".
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from PIL import Image
from sqlalchemy import event, text
from sqlmodel import Session, SQLModel
from werkzeug.serving import make_server

from marketplace import create_app
from marketplace.api import tokens
from marketplace.clusters import accounts, agreements, invites
from marketplace.clusters.exit import service as exits
from marketplace.clusters.governance import service as governance
from marketplace.clusters.insurance import service as insurance
from marketplace.clusters.insurance.documents import check_document
from marketplace.clusters.models import Member, User
from marketplace.clusters.review import service as review
from marketplace.db import utcnow
from marketplace.delivery.preferences import Category
from marketplace.disputes import service as disputes
from marketplace.equipment import booking, calendar, listings, rotation
from marketplace.equipment.photos import store_photo
from marketplace.events import notify
from marketplace.jobs import bidding, completion, service
from marketplace.jobs.models import JobMode
from marketplace.ledger import settlement
from marketplace.mail.composer import unsubscribe_token
from marketplace.scheduling.leader import LEASE_NAME
from marketplace.scheduling.models import SchedulerLease
from tests.conftest import CHEAP_HASHING, SECRET, World, terms
from tests.equipment.conftest import co_draft, draft
from tests.jobs.conftest import add_partner, give_profile, job_draft
from tests.stripe_fake import FakeStripe

WEBHOOK_SECRET = "whsec_matrix"
TORONTO = ZoneInfo("America/Toronto")
BUSY_MS = 100


# --- the world ---------------------------------------------------------------------------


@dataclass
class MatrixWorld:
    world: World
    users: dict[str, User | None]
    ids: dict[str, Any] = field(default_factory=dict)


def png_bytes() -> bytes:
    """A tiny real PNG picture."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (30, 120, 60)).save(buffer, "PNG")
    return buffer.getvalue()


def _local(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=TORONTO)


def build_world(session: Session, world: World, upload_dir: Path) -> MatrixWorld:
    """Real objects of every kind in OUR cluster, made through the services, as of now."""
    now = utcnow()
    today = now.astimezone(TORONTO).date()
    for owner in (world.owner_a, world.owner_b):
        give_profile(session, owner)
    owner_c = add_partner(session, world, "Gamma Trees", "c@gamma.test")
    owner_d = add_partner(session, world, "Delta Decks", "d@delta.test")
    bystander = add_partner(session, world, "Zeta Gardens", "z@zeta.test")
    # Agreement v2 exists only in our cluster (the rival has a v1 of its own).
    version = agreements.publish_agreement(session, world.coordinator,
                                           terms(purpose="Share overflow work, v2."), now)
    for owner in (world.owner_a, world.owner_b, owner_c, owner_d, bystander):
        agreements.accept_agreement(session, owner, version.version, now)

    # Jobs: an open hand-off, a claimed one (contract), a bid window with a solo and a
    # joint bid.
    dates = {"starts_on": today + timedelta(days=10), "ends_on": today + timedelta(days=20)}
    # Work is reported done from the start date: the jobs taken here started today.
    started = {"starts_on": today, "ends_on": today + timedelta(days=1)}
    open_job = service.post_job(session, world.owner_a, job_draft(**dates), now)
    contract_job = service.post_job(session, world.owner_a,
                                    job_draft(title="Edge the park", **started), now)
    service.claim_job(session, world.owner_b, contract_job.id, now)  # type: ignore[arg-type]
    window_job = service.post_job(session, world.owner_a, job_draft(
        title="Plant the boulevard", mode=JobMode.BID_WINDOW.value,
        closes_at=now + timedelta(days=2), **dates), now)
    done_job = service.post_job(session, world.owner_a,
                                job_draft(title="Rake the lawns", **started), now)
    service.claim_job(session, world.owner_b, done_job.id, now)  # type: ignore[arg-type]
    completion.report_done(session, world.owner_b, done_job.id, now)  # type: ignore[arg-type]
    confirmed_job = service.post_job(session, world.owner_a,
                                     job_draft(title="Sod the yard", **started), now)
    service.claim_job(session, world.owner_b, confirmed_job.id, now)  # type: ignore[arg-type]
    completion.report_done(session, world.owner_b, confirmed_job.id, now)  # type: ignore[arg-type]
    completion.confirm_completion(session, world.owner_a, confirmed_job.id, now)  # type: ignore[arg-type]
    bid_terms = bidding.BidTerms(price_minor=900_000, crew_size=3,
                                 earliest_start=dates["starts_on"])
    solo = bidding.place_bid(session, world.owner_b, window_job.id, bid_terms, now)  # type: ignore[arg-type]
    assert owner_c.member_id is not None and owner_d.member_id is not None
    joint = bidding.propose_joint_bid(session, owner_c, window_job.id, bid_terms,  # type: ignore[arg-type]
                                      {owner_c.member_id: 6_000, owner_d.member_id: 4_000}, now)

    # Equipment: A's excavator (with a photo) and skid steer (approval needed), the
    # trailer A and B co-own, bookings by B, a blackout, a rotation plan and a swap.
    photo = store_photo(png_bytes(), upload_dir / "equipment")
    machine = listings.list_machine(session, world.owner_a, draft(), now, photo)
    approval_machine = listings.list_machine(
        session, world.owner_a, draft(name="Bobcat S70", kind="skid_steer",
                                      needs_approval=True), now)
    co_owned = listings.record_co_owned(session, world.coordinator, co_draft(),
                                        {world.member_a_id: 6_000, world.member_b_id: 4_000},
                                        now)
    monday = today + timedelta(days=7 - today.weekday())
    tuesday = monday + timedelta(days=1)
    made = booking.book(session, world.owner_b, machine.id, _local(monday, 9),  # type: ignore[arg-type]
                        _local(monday, 11), now)
    requested = booking.book(session, world.owner_b, approval_machine.id,  # type: ignore[arg-type]
                             _local(monday, 9), _local(monday, 11), now)
    out = booking.book(session, world.owner_b, machine.id, _local(tuesday, 9),  # type: ignore[arg-type]
                       _local(tuesday, 11), now)
    booking.check_out(session, world.owner_b, out.id, 12.5, "Scratch on the boom",  # type: ignore[arg-type]
                      store_photo(png_bytes(), upload_dir / "equipment"), now)
    blackout = listings.add_blackout(session, world.owner_a, machine.id,  # type: ignore[arg-type]
                                     _local(monday + timedelta(days=3), 7),
                                     _local(monday + timedelta(days=3), 18), "Service", now)
    plan = rotation.create_plan(session, world.coordinator, co_owned.id, "week",  # type: ignore[arg-type]
                                today + timedelta(days=1), now)
    periods = [p for p in rotation.schedule(session, plan, now) if p.starts_at > now]
    mine = next(p for p in periods if p.member_id == world.member_a_id)
    theirs = next(p for p in periods if p.member_id == world.member_b_id)
    swap = rotation.request_swap(session, world.owner_a, mine.id, theirs.id, now)  # type: ignore[arg-type]
    spare = next(p for p in periods if p.member_id == world.member_a_id and p.id != mine.id)

    # Money: last month gets an adjustment and a draft settlement.
    cluster_month = settlement.current_month(world.cluster, now)
    month = settlement.previous_month(cluster_month)
    settlement.add_adjustment(session, world.coordinator, month, world.member_a_id, 12_345,
                              "Fuel shared in the spring", now)
    settlement.draft_for(session, world.coordinator, month, now)

    # A notification, a pending invite, a password reset link, a calendar feed.
    notify(session, [world.owner_a], "matrix.hello", "Hello %(name)s", now=now,
           params={"name": "A"}, link="/jobs")
    session.commit()
    # /healthz answers 200 only while a scheduler leads: stand in for one.
    session.add(SchedulerLease(name=LEASE_NAME, holder="authorization-matrix", renewed_at=now))
    session.commit()
    invite = invites.create_member_invite(session, world.coordinator, "e@epsilon.test",
                                          "Epsilon Paving", now, 7)
    # Insurance: B's verified certificate (B is party to A's contract job), A's and C's
    # waiting for the coordinator.
    insured_until = today + timedelta(days=400)

    def certificate(owner: User, insurer: str) -> int:
        assert owner.member_id is not None
        made = insurance.submit_certificate(
            session, owner, owner.member_id,
            insurance.Statement(insurer, "POL-1", 2_000_000_00, insured_until),
            check_document(png_bytes()), now)
        assert made.id is not None
        return made.id

    verified = certificate(world.owner_b, "Beta Mutual")
    insurance.verify_certificate(session, world.coordinator, verified, 2_000_000_00,
                                 insured_until, now)
    pending_certificate = certificate(world.owner_a, "Alpha Assurance")
    rejectable = certificate(owner_c, "Gamma Casualty")
    # A change to the agreement, put to the vote by the coordinator (open for a week).
    proposal = governance.propose_change(
        session, world.coordinator, terms(purpose="Share overflow work, v3."),
        "Fees should reward hand-offs.", 7, now)
    # A sunset review, open (the scheduler opens one 30 days before the sunset; here now).
    review.open_review(session, world.cluster.id, version.version, version.sunset_on, now)
    sunset_review = review.current_review(session, world.cluster.id)
    assert sunset_review is not None
    # A dispute: B, which did A's confirmed job, disputes the referral fee it owes A, with
    # a message and a photo (A's and B's people and the coordinator read it; nobody else).
    dispute = disputes.open_dispute(session, world.owner_b, "job", confirmed_job.id,  # type: ignore[arg-type]
                                    "referral_fee", "The customer called us first.", now)
    said = disputes.post_message(session, world.owner_b, dispute.id,  # type: ignore[arg-type]
                                 "Our e-mails with the customer.", png_bytes(),
                                 upload_dir / "disputes", None, now)
    # A business that left the cluster: its exit took effect yesterday (clusters/exit/).
    leaver = add_partner(session, world, "Omega Fencing", "o@omega.test")
    assert leaver.member_id is not None
    gone = session.get(Member, leaver.member_id)
    assert gone is not None
    gone.exit_effective_at = now - timedelta(days=1)
    session.add(gone)
    session.commit()
    exits.take_effect(session, leaver.member_id, exits.ExitReason.NOTICE,
                      gone.exit_effective_at, now)
    member_a = session.get(Member, world.member_a_id)
    assert member_a is not None
    users: dict[str, User | None] = {
        "anonymous": None, "crew": world.crew_a, "owner": world.owner_a,
        "partner": world.owner_b, "bystander": bystander, "coordinator": world.coordinator,
        "rival_owner": world.other_owner, "rival_coordinator": world.other_coordinator,
        # Not matrix visitors: the lead and the co-bidder of the joint bid.
        "joint_lead": owner_c, "joint_partner": owner_d, "former_member": leaver,
    }
    ids = {
        "open_job": open_job.id, "contract_job": contract_job.id, "window_job": window_job.id,
        "done_job": done_job.id, "confirmed_job": confirmed_job.id,
        "joint_bid": joint.id, "member_c": owner_c.member_id, "solo_bid": solo.id,
        "member_b": world.member_b_id, "their_period": theirs.id, "my_period": mine.id,
        "member_a": world.member_a_id, "machine": machine.id,
        "co_owned": co_owned.id, "booking": made.id, "requested": requested.id,
        "checked_out": out.id, "blackout": blackout.id, "custody": spare.id,
        "swap": swap.id, "month": month, "version": version.version,
        "certificate": verified, "pending_certificate": pending_certificate,
        "rejectable": rejectable, "proposal": proposal.id, "exited_member": leaver.member_id,
        "dispute": dispute.id, "dispute_photo": said.id,
        "review": sunset_review.id,
        "insured_until": insured_until.isoformat(),
        "api_token": tokens.create_token(session, world.owner_a, "Alpha's script", now).token.id,
        "invite": invites.invite_token(SECRET, invite),
        "reset": accounts.make_reset_token(SECRET, world.crew_a),
        "feed": calendar.feed_token(session, member_a, now),
        "unsubscribe": unsubscribe_token(SECRET, world.crew_a.id, Category.MONEY),  # type: ignore[arg-type]
        # Form values, typed the way the users (Toronto) would.
        "start_date": dates["starts_on"].isoformat(),
        "tomorrow": (today + timedelta(days=1)).isoformat(),
        "slot_from": f"{(monday + timedelta(days=1)).isoformat()}T13:00",
        "slot_until": f"{(monday + timedelta(days=1)).isoformat()}T15:00",
    }
    return MatrixWorld(world, users, ids)


#: Values of URL variables that are not objects of ours.
FIXED = {"answer": "decline", "code": "fr", "filename": "css/app.css"}
FIXED_BY_ENDPOINT = {"vendor": {"filename": "socket.io.min.js"},
                     "dashboard.chart_csv": {"chart": "jobs"}}


def url_of(app: Flask, endpoint: str, target: str, ids: dict[str, Any]) -> str:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    values: dict[str, Any] = {}
    for name in rule.arguments:
        fixed = {**FIXED, **FIXED_BY_ENDPOINT.get(endpoint, {})}
        values[name] = fixed[name] if name in fixed else ids[target]
    with app.test_request_context():
        from flask import url_for
        return url_for(endpoint, **values)


# --- the app ------------------------------------------------------------------------------


@contextmanager
def serve_fake_stripe() -> Iterator[tuple[FakeStripe, str]]:
    """tests/stripe_fake.py's server, polled often so that stopping it takes no time."""
    fake = FakeStripe()
    server = make_server("127.0.0.1", 0, fake, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def stripe_mode_app(database_url: str, upload_dir: Path, fake_stripe: tuple[FakeStripe, str]
                    ) -> Flask:
    """The test app in Stripe mode (against the fake server), so the payout routes check
    who asks instead of answering "offline ledger" to everyone."""
    flask_app = create_app({
        "UPLOAD_DIR": str(upload_dir), "RATELIMIT_ENABLED": False,
        "TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": SECRET,
        "WTF_CSRF_ENABLED": False, "REDIS_URL": None, "PUBLIC_URL": "http://localhost",
        "STRIPE_SECRET_KEY": fake_stripe[0].secret_key, "STRIPE_API_BASE": fake_stripe[1],
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, **CHEAP_HASHING,
    })
    engine = flask_app.extensions["engine"]
    if engine.dialect.name == "sqlite":
        # Nothing here runs concurrently, so a request waiting for SQLite's write lock
        # waits for itself: give up after a moment instead of the production 30 s.
        @event.listens_for(engine, "connect")
        def _short_busy_wait(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute(f"PRAGMA busy_timeout={BUSY_MS}")

    return flask_app


def table_digest(session: Session) -> dict[str, tuple[int, str]]:
    """Every table's row count and a hash of its full content: any write changes it."""
    session.rollback()
    digest = {}
    for table in SQLModel.metadata.sorted_tables:
        order = ", ".join(f'"{c.name}"' for c in table.primary_key.columns) or "1"
        rows = session.connection().execute(
            text(f'SELECT * FROM "{table.name}" ORDER BY {order}')).all()
        content = json.dumps([list(r) for r in rows], default=str, sort_keys=True)
        digest[table.name] = (len(rows), hashlib.sha256(content.encode()).hexdigest())
    session.rollback()
    return digest
