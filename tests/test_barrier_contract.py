"""The barrier is a checked contract: `marketplace.barrier.TABLE` lists, per audience,
the fields of a job, a job's bid list, a bid and a bid share it may receive, and
nothing reaches an audience that the table does not list for it.

- The table keeps the rules of DESIGN.md (Rule 5): customer fields only for the poster
  and the contract's parties, a bid only for the poster and the bid's own parties,
  no distance for a coordinator, nothing at all for another cluster.
- Structural: the builders of `jobs/visibility.py`, run for every audience on jobs in
  every state, produce exactly the fields the table lists (a key added to a builder
  and not to the table fails here), and each audience's view is the table's row.
- End to end: a real user of each audience reads every output path that carries jobs
  or bids (page JSON and HTML, the API with a token, the notification centre, the
  stored notifications in their socket and push shape, the e-mails written to them);
  every job and bid object it receives has only fields its audience may receive, and
  no customer value or bid price it may not see appears anywhere in what it got.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlmodel import Session, col, select

from marketplace import barrier
from marketplace.barrier import BID, BID_SHARE, BIDS, JOB, Audience
from marketplace.clusters.models import Member, User
from marketplace.db import session_scope
from marketplace.delivery.worker import WorkerSettings
from marketplace.jobs import bidding, completion, service, visibility
from marketplace.jobs.eligibility import job_trades
from marketplace.jobs.models import Bid, BidShare, ContractParty, JobContract, OverflowJob
from marketplace.mail.composer import MailComposer
from marketplace.mail.runner import mail_transport
from marketplace.mail.worker import send_due_mail
from marketplace.money import format_money
from marketplace.realtime.models import Notification
from marketplace.realtime.publisher import render_notification
from marketplace.realtime.wire import push_payload
from tests.api.conftest import bearer
from tests.conftest import NOW, World, invite_user, login
from tests.jobs import conftest as jobs_fixtures
from tests.jobs.conftest import CLOSES_AT, STARTS_ON, add_partner

jobs_world = jobs_fixtures.jobs_world  # the fixtures shared with tests/jobs
post = jobs_fixtures.post

Post = Callable[..., OverflowJob]

#: Rule 5, stated here independently of the table: who may know a job's customer, and
#: who may know a bid (relative to that bid).
CUSTOMER_AUDIENCES = frozenset({Audience.POSTER, Audience.PARTY})
BID_AUDIENCES = frozenset({Audience.POSTER, Audience.PARTY})
CUSTOMER_FIELDS = frozenset({"site_lat", "site_lng", "address", "customer_name",
                             "customer_contact"})
ON_OFFER = ("open", "window_closed")
JOB_KINDS = ("job", "bid", "joint", "window")  # notification kinds about a job
LOCALES = ("en_CA", "fr_CA", "de", "es")


# -- the scene: jobs in every state, bids of every kind, a user of every audience --------

@dataclass(frozen=True)
class Customer:
    name: str
    contact: str
    address: str
    site: tuple[float, float]

    def draft(self) -> dict[str, Any]:
        return {"customer_name": self.name, "customer_contact": self.contact,
                "address": self.address, "site_lat": self.site[0], "site_lng": self.site[1]}

    def strings(self) -> list[str]:
        return [self.name, self.contact, self.address, str(self.site[0]), str(self.site[1])]


def customer(n: int, site: tuple[float, float]) -> Customer:
    return Customer(f"Ulyana Vexworth {n}", f"ulyana{n}@customer.example +1-416-555-01{n}",
                    f"{n}7 Zephyrine Lane, Unit {n}", site)


SITES = [(43.6532, -79.3832), (43.6611, -79.3957), (43.6719, -79.4127), (43.6843, -79.3689),
         (43.6478, -79.4311), (43.6905, -79.4472), (43.7064, -79.3718)]
PRICES = {"b_open": 3_141_593, "g_open": 2_718_282, "joint_open": 1_414_214,
          "draft_open": 1_732_051, "b_closed": 2_236_068, "b_awarded": 2_645_751,
          "joint_awarded": 3_316_625}


@dataclass
class Scene:
    world: World
    readers: dict[str, User]
    jobs: dict[str, OverflowJob]
    customers: dict[int, Customer]  # by job id
    prices: dict[int, int] = field(default_factory=dict)  # bid id -> price


def bid(session: Session, user: User, job: OverflowJob, price: int) -> Bid:
    return bidding.place_bid(session, user, job.id,
                             bidding.BidTerms(price, 3, STARTS_ON, "ready"), NOW)


def joint(session: Session, lead: User, partner: User, job: OverflowJob, price: int,
          submit: bool) -> Bid:
    made = bidding.propose_joint_bid(
        session, lead, job.id, bidding.BidTerms(price, 6, STARTS_ON, "together"),
        {lead.member_id: 6_000, partner.member_id: 4_000}, NOW)  # type: ignore[dict-item]
    if submit:
        bidding.confirm_joint_share(session, partner, made.id, NOW)  # type: ignore[arg-type]
        bidding.submit_joint_bid(session, lead, made.id, NOW)  # type: ignore[arg-type]
    return made


@pytest.fixture
def scene(session: Session, jobs_world: World, post: Post) -> Scene:
    w = jobs_world
    gamma = add_partner(session, w, "Gamma Trees", "g@gamma.test")
    delta = add_partner(session, w, "Delta Yards", "d@delta.test")
    epsilon = add_partner(session, w, "Epsilon Earthworks", "e@eps.test")
    zeta = add_partner(session, w, "Zeta Drains", "z@zeta.test", trades=("drainage",))
    crew_b = invite_user(session, w.owner_b, "crew@beta.test")
    customers = [customer(n, site) for n, site in enumerate(SITES, start=1)]
    jobs: dict[str, OverflowJob] = {}
    prices: dict[int, int] = {}

    def posted(name: str, n: int, **changes: Any) -> OverflowJob:
        jobs[name] = post(title=f"Job {name}", **customers[n].draft(), **changes)
        return jobs[name]

    posted("handoff_open", 0)
    service.claim_job(session, w.owner_b, posted("handoff_claimed", 1).id, NOW)
    window = posted("window_open", 2, bid_window=True, closes_at=NOW + timedelta(days=5))
    prices[bid(session, w.owner_b, window, PRICES["b_open"]).id] = PRICES["b_open"]  # type: ignore[index]
    prices[bid(session, gamma, window, PRICES["g_open"]).id] = PRICES["g_open"]  # type: ignore[index]
    prices[joint(session, epsilon, delta, window, PRICES["joint_open"], True).id] = (  # type: ignore[index]
        PRICES["joint_open"])
    prices[joint(session, delta, gamma, window, PRICES["draft_open"], False).id] = (  # type: ignore[index]
        PRICES["draft_open"])
    closed = posted("window_closed", 3, bid_window=True)
    prices[bid(session, w.owner_b, closed, PRICES["b_closed"]).id] = PRICES["b_closed"]  # type: ignore[index]
    assert bidding.close_window(session, closed.id, CLOSES_AT)  # type: ignore[arg-type]
    awarded = posted("window_awarded", 4, bid_window=True)
    prices[bid(session, w.owner_b, awarded, PRICES["b_awarded"]).id] = PRICES["b_awarded"]  # type: ignore[index]
    winner = joint(session, epsilon, delta, awarded, PRICES["joint_awarded"], True)
    prices[winner.id] = PRICES["joint_awarded"]  # type: ignore[index]
    assert bidding.close_window(session, awarded.id, CLOSES_AT)  # type: ignore[arg-type]
    bidding.award_bid(session, w.owner_a, awarded.id, winner.id, CLOSES_AT)  # type: ignore[arg-type]
    service.cancel_job(session, w.owner_a, posted("cancelled", 5).id, "The customer moved.",  # type: ignore[arg-type]
                       NOW)
    done = posted("confirmed", 6)
    service.claim_job(session, gamma, done.id, NOW)  # type: ignore[arg-type]
    on_site = datetime.combine(done.starts_on, datetime.min.time(), tzinfo=UTC) + timedelta(
        hours=18)  # the start date, in the afternoon in Toronto: work is reported from then
    completion.report_done(session, gamma, done.id, on_site)  # type: ignore[arg-type]
    completion.confirm_completion(session, w.owner_a, done.id, on_site + timedelta(hours=1))  # type: ignore[arg-type]
    for job in jobs.values():
        session.refresh(job)
    readers = {"poster": w.owner_a, "poster's crew": w.crew_a, "B": w.owner_b, "B's crew": crew_b,
               "gamma": gamma, "delta": delta, "epsilon": epsilon, "zeta": zeta,
               "coordinator": w.coordinator, "rival owner": w.other_owner,
               "rival coordinator": w.other_coordinator}
    return Scene(w, readers, jobs, {jobs[name].id: c for name, c in  # type: ignore[misc]
                                    zip(jobs, customers, strict=True)}, prices)


# -- who is who, from the stored facts (independently of visibility.py) -----------------

@dataclass
class Facts:
    jobs: dict[int, OverflowJob]
    parties: dict[int, set[int]]  # job id -> contract parties
    bids: dict[int, Bid]
    bid_parties: dict[int, set[int]]  # bid id -> lead and share members

    def job_audience(self, user: User, job_id: int) -> Audience:
        job = self.jobs[job_id]
        if user.cluster_id != job.cluster_id:
            return Audience.OTHER_CLUSTER
        if user.member_id is None:
            return Audience.COORDINATOR
        if user.member_id == job.poster_member_id:
            return Audience.POSTER
        if user.member_id in self.parties.get(job_id, set()):
            return Audience.PARTY
        return Audience.PARTNER if job.status in ON_OFFER else Audience.OTHER_MEMBER

    def bid_audience(self, user: User, bid_id: int) -> Audience:
        the_bid = self.bids[bid_id]
        on_job = self.job_audience(user, the_bid.job_id)
        if user.member_id is not None and user.member_id in self.bid_parties[bid_id]:
            return Audience.PARTY
        if on_job is Audience.POSTER and the_bid.status == "submitted":
            return Audience.POSTER
        if on_job in (Audience.COORDINATOR, Audience.OTHER_CLUSTER, Audience.PARTNER):
            return on_job
        return Audience.OTHER_MEMBER


def facts(session: Session, scene: Scene) -> Facts:
    ids = [job.id for job in scene.jobs.values()]
    parties: dict[int, set[int]] = {}
    for job_id, member_id in session.exec(
            select(JobContract.job_id, ContractParty.member_id)
            .join(ContractParty, col(ContractParty.contract_id) == JobContract.id)):
        parties.setdefault(job_id, set()).add(member_id)
    bids = {b.id: b for b in session.exec(select(Bid).where(col(Bid.job_id).in_(ids)))}
    bid_parties = {bid_id: {b.member_id} for bid_id, b in bids.items()}
    for share in session.exec(select(BidShare)):
        bid_parties[share.bid_id].add(share.member_id)
    return Facts({job.id: job for job in scene.jobs.values()}, parties, bids,  # type: ignore[misc]
                 bid_parties)  # type: ignore[arg-type]


def member_of(session: Session, user: User) -> Member | None:
    return session.get(Member, user.member_id) if user.member_id else None


# -- 1. the table keeps the rules --------------------------------------------------------

def test_the_table_lists_every_audience_and_keeps_rule_5() -> None:
    for resource, rows in barrier.TABLE.items():
        assert set(rows) == set(Audience), f"{resource}: every audience must be listed"
        assert rows[Audience.OTHER_CLUSTER] == frozenset(), f"{resource} reaches a rival cluster"
    for audience in Audience:
        job_fields = barrier.fields(JOB, audience)
        assert bool(CUSTOMER_FIELDS & job_fields) == (audience in CUSTOMER_AUDIENCES), audience
        if audience in CUSTOMER_AUDIENCES:
            assert CUSTOMER_FIELDS <= job_fields, audience
        assert bool(barrier.fields(BID, audience)) == (audience in BID_AUDIENCES), audience
        assert bool(barrier.fields(BID_SHARE, audience)) == (audience in BID_AUDIENCES), audience
    assert not {"distance_km", "distance_precision"} & barrier.fields(JOB, Audience.COORDINATOR)
    # The notice keys point at fields the table knows.
    for resource, name in barrier.NOTICE_KEYS.values():
        assert name in barrier.known_fields(resource), (resource, name)


# -- 2. structural: the builders produce exactly what the table lists ---------------------

def test_every_builder_field_is_listed_and_each_view_is_its_audiences_row(
        session: Session, scene: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    produced: dict[str, set[str]] = {}
    real_cut = visibility.cut

    def spy(resource: str, audience: Audience, data: dict[str, Any]) -> barrier.ReadModel:
        produced.setdefault(resource, set()).update(data)
        return real_cut(resource, audience, data)

    monkeypatch.setattr(visibility, "cut", spy)
    known = facts(session, scene)
    jobs = list(scene.jobs.values())
    seen_job: set[Audience] = set()
    seen_bid: set[Audience] = set()
    for name, reader in scene.readers.items():
        viewer = visibility.viewer_of(reader)
        cards = visibility.jobs_for(session, viewer, jobs, member_of(session, reader))
        for job, card in zip(jobs, cards, strict=True):
            audience = known.job_audience(reader, job.id)  # type: ignore[arg-type]
            seen_job.add(audience)
            assert isinstance(card, barrier.ReadModel), "a job view skipped the barrier"
            assert (card.resource, card.audience) == (JOB, audience), (name, job.title)
            assert set(card) == barrier.fields(JOB, audience), (name, job.title)
            bids = visibility.bids_for(session, viewer, job)
            assert isinstance(bids, barrier.ReadModel), "a bid list skipped the barrier"
            assert set(bids) == barrier.fields(BIDS, bids.audience), (name, job.title)
            expected = {b.id for b in known.bids.values() if b.job_id == job.id
                        and barrier.may_receive(BID, known.bid_audience(reader, b.id))}  # type: ignore[arg-type]
            assert {b["id"] for b in bids.get("bids", [])} == expected, (name, job.title)
            for one in bids.get("bids", []):
                bid_audience = known.bid_audience(reader, one["id"])
                seen_bid.add(bid_audience)
                assert isinstance(one, barrier.ReadModel) and one.audience is bid_audience
                assert set(one) == barrier.fields(BID, bid_audience), (name, one["id"])
                for share in one["shares"]:
                    assert isinstance(share, barrier.ReadModel), "a share skipped the barrier"
                    assert set(share) == barrier.fields(BID_SHARE, bid_audience)
    for job in jobs:  # the `job.posted` / `window.closing` payload
        public = visibility.job_public(job, job_trades(session, job.id))  # type: ignore[arg-type]
        assert isinstance(public, barrier.ReadModel)
        assert set(public) <= barrier.fields(JOB, Audience.PARTNER)
    assert seen_job == set(Audience), f"audiences never built: {set(Audience) - seen_job}"
    assert seen_bid >= BID_AUDIENCES
    for resource in (JOB, BIDS, BID, BID_SHARE):  # equipment: tests/equipment/…_barrier.py
        unlisted = produced.get(resource, set()) - barrier.known_fields(resource)
        assert not unlisted, (f"visibility builds {resource} fields the barrier table does "
                              f"not list for any audience: {sorted(unlisted)}")
        never_built = barrier.known_fields(resource) - produced.get(resource, set())
        assert not never_built, f"the table lists {resource} fields no builder makes: " \
                                f"{sorted(never_built)}"


# -- 3. end to end: every output path, a real user of every audience --------------------

@dataclass
class Reading:
    """What one person received, and what it must not contain."""

    reader: str
    user: User
    known: Facts
    forbidden: dict[str, str]  # a value -> what it is
    problems: list[str] = field(default_factory=list)
    audiences: set[tuple[str, Audience]] = field(default_factory=set)
    objects: int = 0

    def body(self, where: str, text: str) -> None:
        for value, what in self.forbidden.items():
            if value in text:
                self.problems.append(f"{self.reader}: {where} carries {what} ({value!r})")

    def keys(self, where: str, resource: str, audience: Audience, obj: dict[str, Any]) -> None:
        self.objects += 1
        self.audiences.add((resource, audience))
        extra = set(obj) - barrier.fields(resource, audience)
        if extra:
            self.problems.append(f"{self.reader}: {where} gives a {resource} to {audience} "
                                 f"with fields it may not receive: {sorted(extra)}")

    def job(self, where: str, obj: dict[str, Any]) -> None:
        if obj.get("id") not in self.known.jobs:
            self.problems.append(f"{self.reader}: {where} has a job object without a known "
                                 f"id: {sorted(obj)}")
            return
        self.keys(where, JOB, self.known.job_audience(self.user, obj["id"]), obj)

    def bid_list(self, where: str, job_id: int | None, obj: dict[str, Any]) -> None:
        if job_id in self.known.jobs:
            self.keys(where, BIDS, self.known.job_audience(self.user, job_id), obj)
        for one in obj.get("bids", []):
            if one.get("id") not in self.known.bids:
                self.problems.append(f"{self.reader}: {where} has an unknown bid {one}")
                continue
            audience = self.known.bid_audience(self.user, one["id"])
            self.keys(where, BID, audience, one)
            for share in one.get("shares", []):
                self.keys(where, BID_SHARE, audience, share)

    def document(self, where: str, data: Any) -> None:
        """Every job, bid list, bid and share in a page-JSON or API document."""
        if isinstance(data, list):
            for item in data:
                self.document(where, item)
            return
        if not isinstance(data, dict):
            return
        job = data.get("job")
        if isinstance(job, dict):
            self.job(where, job)
        for key in ("jobs", "posted", "bidding", "won", "done"):
            for item in data.get(key) or []:
                self.job(where, item)
        if isinstance(data.get("bids"), dict):
            self.bid_list(where, job.get("id") if isinstance(job, dict) else None,
                          data["bids"])
        for key, value in data.items():
            if key not in ("job", "jobs", "posted", "bidding", "won", "done", "bids"):
                self.document(where, value)

    def notice(self, where: str, kind: str, payload: dict[str, Any]) -> None:
        """A job notification's payload: a job card, or a notice naming fields of a job,
        its bid list and its bids (barrier.NOTICE_KEYS)."""
        if kind.split(".")[0] not in JOB_KINDS or not payload:
            return
        if "title" in payload:  # job_public
            self.job(where, payload)
            return
        job_id = payload.get("job_id", payload.get("id"))
        if job_id not in self.known.jobs:
            self.problems.append(f"{self.reader}: {where} {kind} names no known job: {payload}")
            return
        for key in payload:
            resource, name = barrier.NOTICE_KEYS.get(key, (JOB, key))
            if resource == BID:
                bid_id = payload.get("bid_id") or next(
                    (b.id for b in self.known.bids.values()
                     if b.job_id == job_id and b.member_id == payload.get("member_id")), None)
                if bid_id is None:
                    self.problems.append(f"{self.reader}: {where} {kind} names no bid")
                    continue
                audience = self.known.bid_audience(self.user, bid_id)
            else:
                audience = self.known.job_audience(self.user, job_id)
            self.audiences.add(("notice", audience))
            if name not in barrier.fields(resource, audience):
                self.problems.append(f"{self.reader}: {where} {kind} gives {resource}.{name} "
                                     f"to {audience}")


def forbidden_for(scene: Scene, known: Facts, user: User) -> dict[str, str]:
    """The customer values and bid prices this person may not see, by Rule 5 and by the
    table (either one withholding it is enough)."""
    forbidden: dict[str, str] = {}
    for job_id, who in scene.customers.items():
        audience = known.job_audience(user, job_id)
        if audience not in CUSTOMER_AUDIENCES or not CUSTOMER_FIELDS <= barrier.fields(
                JOB, audience):
            forbidden.update({s: f"the customer of job {job_id}" for s in who.strings()})
    for bid_id, price in scene.prices.items():
        audience = known.bid_audience(user, bid_id)
        if audience not in BID_AUDIENCES or "price_minor" not in barrier.fields(BID, audience):
            for text in price_strings(price):
                forbidden[text] = f"the price of bid {bid_id}"
    return forbidden


def price_strings(price: int) -> list[str]:
    """A price as it could be written: minor units, a decimal, or money in any locale."""
    plain = f"{price // 100}.{price % 100:02d}"
    return [str(price), plain, plain.replace(".", ",")] + [
        format_money(price, "CAD", locale) for locale in LOCALES]


def texts_of(response_text: str) -> str:
    """A JSON body also as unescaped text (non-ASCII money written as is)."""
    try:
        return response_text + json.dumps(json.loads(response_text), ensure_ascii=False)
    except ValueError:
        return response_text


def read_everything(app: Flask, session: Session, scene: Scene, reading: Reading,
                    headers: dict[str, str]) -> None:
    user, ids = reading.user, list(reading.known.jobs)
    ours = user.cluster_id == scene.world.cluster.id
    client = app.test_client()
    login(client, user)
    pages = ["/jobs", "/jobs/cluster", "/jobs/mine", "/notifications"] + [
        f"/jobs/{job_id}" for job_id in ids]
    for url in pages:
        for accept in ("text/html", "application/json"):
            response = client.get(url, headers={"Accept": accept}, follow_redirects=True)
            text = response.get_data(as_text=True)
            where = f"{url} ({accept}, {response.status_code})"
            reading.body(where, texts_of(text))
            if response.is_json:
                reading.document(where, response.get_json())
                for item in (response.get_json() or {}).get("notifications", []):
                    reading.notice(where, item["kind"], item["data"])
            if url.startswith("/jobs/") and url[6:].isdigit() and accept == "application/json":
                assert response.status_code == (200 if ours else 404), (reading.reader, where)
    for url in ["/api/v1/jobs", "/api/v1/jobs/mine"] + [f"/api/v1/jobs/{i}" for i in ids]:
        response = client.get(url, headers=headers)
        where = f"{url} (API, {response.status_code})"
        reading.body(where, texts_of(response.get_data(as_text=True)))
        reading.document(where, response.get_json())
        if url[len("/api/v1/jobs/"):].isdigit():
            assert response.status_code == (200 if ours else 404), (reading.reader, where)
    session.rollback()  # a fresh snapshot, after what the app wrote
    rows = list(session.exec(select(Notification).where(Notification.user_id == user.id)))
    for row in rows:  # the stored row, its socket / centre shape and its Web Push body
        where = f"notification {row.kind}"
        reading.notice(where, row.kind, row.payload)
        with app.test_request_context():
            wire = render_notification(row)
        reading.body(where, json.dumps(wire, ensure_ascii=False, default=str))
        reading.body(f"push {row.kind}", push_payload(wire, "title", "en").decode())


def mails_written(app: Flask) -> list[EmailMessage]:
    """Run the mail worker as the scene's days go by (tests/conftest.py's `sent_mails`
    runs it today, when the scene's mails are long stale) and read what it wrote."""
    for day in range(4):
        with app.app_context(), session_scope(app.extensions["engine"]) as work:
            send_due_mail(work, NOW + timedelta(days=day, hours=1), mail_transport(app),
                          MailComposer(app, work), WorkerSettings())
    return [message_from_bytes(path.read_bytes(), policy=policy.default)  # type: ignore[misc]
            for path in sorted(Path(app.config["MAIL_FOLDER"]).glob("*.eml"))]


def test_no_audience_receives_a_field_or_value_the_table_withholds(
        app: Flask, session: Session, scene: Scene) -> None:
    tokens = {name: bearer(session, user) for name, user in scene.readers.items()}
    known = facts(session, scene)
    session.commit()
    readings = []
    for name, user in scene.readers.items():
        reading = Reading(name, user, known, forbidden_for(scene, known, user))
        read_everything(app, session, scene, reading, tokens[name])
        readings.append(reading)
    mails = mails_written(app)
    for reading in readings:
        for mail in mails:
            if reading.user.email not in str(mail["To"]):
                continue
            parts = [str(mail["Subject"])] + [
                part.get_content() for part in mail.walk()
                if part.get_content_maintype() == "text"]
            reading.body(f"mail {mail['Subject']!r}", "\n".join(parts))
    problems = [p for r in readings for p in r.problems]
    assert not problems, "\n".join(problems[:40])
    # Not vacuous: every audience was a real reader of jobs and bids, rivals got nothing.
    got = set().union(*(r.audiences for r in readings))
    for audience in Audience:
        if audience is not Audience.OTHER_CLUSTER:
            assert (JOB, audience) in got, f"no {audience} read a job"
    assert {(BID, Audience.POSTER), (BID, Audience.PARTY)} <= got
    assert ("notice", Audience.PARTNER) in got and ("notice", Audience.POSTER) in got
    rivals = [r for r in readings if r.user.cluster_id != scene.world.cluster.id]
    assert rivals and all(r.objects == 0 for r in rivals)
    assert all(r.forbidden for r in readings if r.reader not in ("poster", "poster's crew"))
    assert any(reading.user.email in str(mail["To"]) for mail in mails
               for reading in readings), "no mail was written to any reader"

