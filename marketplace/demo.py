"""Demo data: a living cluster for a newcomer's first look.

Built through the same service functions users go through (invites are
accepted, the agreement is published and accepted), so the demo can never
hold a state the product itself could not reach.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from PIL import Image
from sqlmodel import Session, col, select

from marketplace.clusters import agreements, invites, service
from marketplace.clusters.insurance import service as insurance
from marketplace.clusters.insurance.documents import check_document
from marketplace.clusters.models import Cluster, User
from marketplace.clusters.review import service as review
from marketplace.dashboard.periods import months_back
from marketplace.disputes import service as disputes
from marketplace.equipment import booking, listings, rotation
from marketplace.equipment.models import Equipment, EquipmentKind, RotationPeriod
from marketplace.events import mark_all_read
from marketplace.jobs.bidding import BidTerms, award_bid, close_window, place_bid
from marketplace.jobs.completion import confirm_completion, rate, report_done
from marketplace.jobs.models import JobMode, OverflowJob
from marketplace.jobs.service import JobDraft, cancel_job, claim_job, expire_due_jobs, post_job
from marketplace.ledger.service import next_month
from marketplace.ledger.settlement import approve, current_month, draft_for
from marketplace.persisted import id_of

DEMO_CLUSTER = "Valley Green Cooperative"
DEMO_PASSWORD = "valley-green-demo"
COORDINATOR_EMAIL = "coordinator@valleygreen.example"
VALLEY_TIME = ZoneInfo("America/Toronto")
HISTORY_MONTHS = 6
#: The owned machines were listed this long ago: before the first history month began.
HISTORY_DAYS = (HISTORY_MONTHS + 1) * 31 + 7
#: The cluster was founded, and its first agreement published, this long ago.
FOUNDED_DAYS = HISTORY_DAYS + 14
#: The first agreement's sunset date was this many days ago: its review ended in a renewal.
FIRST_SUNSET_DAYS_AGO = 24


@dataclass(frozen=True)
class DemoFirm:
    name: str
    owner: str
    email: str
    locale: str
    trades: tuple[str, ...]
    lat: float
    lng: float
    radius_km: float
    insured_for_days: int
    #: The liability coverage on its certificate, in cents.
    coverage_minor: int = 2_000_000_00


FIRMS = (
    DemoFirm("Maple Ridge Lawn & Garden", "Olivia Tremblay", "olivia@mapleridge.example", "en",
             ("mowing", "planting", "irrigation"), 45.4215, -75.6972, 40, 400),
    DemoFirm("Hernández Hardscapes", "Mateo Hernández", "mateo@hernandez.example", "es",
             ("hardscaping", "masonry", "paving", "drainage"), 45.3876, -75.6960, 35, 300),
    DemoFirm("Paysagement Laurentide", "Camille Gagnon", "camille@laurentide.example", "fr",
             ("tree_work", "planting", "snow_removal"), 45.4765, -75.7013, 50, 500,
             5_000_000_00),
    DemoFirm("Ottawa Valley Excavating", "Noah Campbell", "noah@ovexcavating.example", "en",
             ("grading", "drainage", "general_contracting"), 45.3500, -75.9000, 60, 20),
    DemoFirm("Green Fence & Deck", "Sofía Ramírez", "sofia@greenfence.example", "es",
             ("fencing", "general_contracting"), 45.2700, -75.7400, 25, 365),
)


def seed_demo(session: Session, secret_key: str, now: datetime) -> bool:
    """Create the demo cluster once; returns False when it already exists.

    The cluster was founded before its history began, under a first agreement whose
    sunset came a few weeks ago; its sunset review ended in a renewal (`_seed_review`),
    so the agreement in force today is version 2, every member's acceptance of it on
    record."""
    if session.exec(select(Cluster).where(Cluster.name == DEMO_CLUSTER)).first():
        return False
    founded = now - timedelta(days=FOUNDED_DAYS)
    _cluster, coordinator = service.create_cluster(
        session,
        service.ClusterSettings(name=DEMO_CLUSTER, currency="CAD", default_locale="en_CA",
                                timezone="America/Toronto", unit_system="metric"),
        "Priya Natarajan", COORDINATOR_EMAIL, DEMO_PASSWORD, founded)
    renewed_sunset = date(now.year + 2, 12, 31)
    first_sunset = (now - timedelta(days=FIRST_SUNSET_DAYS_AGO)).astimezone(VALLEY_TIME).date()
    agreement = agreements.publish_agreement(session, coordinator, agreements.AgreementTerms(
        purpose="Keep work that one of us cannot take inside the valley, share the machines "
                "none of us can keep busy alone, and split the money exactly as agreed.",
        scope_overflow_jobs=True, scope_equipment=True, scope_joint_bids=True,
        referral_fee_bp=500, platform_fee_bp=100,
        sunset_on=first_sunset, exit_notice_days=30,
        information_rules="Partners see what a job needs and where it is, roughly. Bid prices "
                          "stay with the poster. Customer names and addresses are shared only "
                          "with the member who wins the job.",
        min_coverage={"tree_work": 5_000_000_00},  # climbing near houses and wires
        targets={"overflow_value_kept": 25_000_00, "jobs_handed_over": 6,
                 "machine_utilization_bp": 4_000, "equipment_fees_kept": 3_000_00},
    ), founded)
    for number, firm in enumerate(FIRMS):
        joined = founded + timedelta(days=1 + number)  # one business a day signs up
        invite = invites.create_member_invite(session, coordinator, firm.email, firm.name,
                                              founded, 7)
        owner = invites.accept_invite(session, secret_key, invites.invite_token(secret_key, invite),
                                      firm.owner, DEMO_PASSWORD, joined)
        service.update_preferences(session, owner, firm.locale, None, None)
        assert owner.member_id is not None
        service.update_member_profile(session, owner, owner.member_id, service.MemberProfile(
            name=firm.name, trades=firm.trades, base_lat=firm.lat, base_lng=firm.lng,
            service_radius_km=firm.radius_km, certifications="",
        ))
        _insure(session, owner, coordinator, firm, now)
        agreements.accept_agreement(session, owner, agreement.version,
                                    joined + timedelta(hours=2))
    _seed_review(session, coordinator, first_sunset, renewed_sunset)
    grinder, excavator = _list_machines(session, now - timedelta(days=HISTORY_DAYS))
    _seed_history(session, coordinator, id_of(grinder), id_of(excavator), now)
    patio = _seed_jobs(session, now)
    _seed_equipment(session, coordinator, id_of(grinder), now)
    _seed_disputes(session, coordinator, id_of(grinder), id_of(patio), now)
    return True


#: What each business answered in the first agreement's sunset review, and what it
#: learned (Green Fence & Deck did not answer): by firm e-mail.
REVIEW_ANSWERS = {
    FIRMS[0].email: ("renew", "Handing our planting overflow to Laurentide every month kept "
                              "customers we used to turn away, and booking the stump grinder "
                              "costs less than renting one in town."),
    FIRMS[3].email: ("renew", "The bid windows brought us steady drainage work. A day or two "
                              "more before a window closes would let us see the site first."),
    FIRMS[2].email: ("change", "Renew, but with a lower referral fee on small hand-offs: on a "
                               "planting job it takes most of the margin."),
    FIRMS[1].email: ("renew", "Every drainage job we put up for bids found a crew, and our "
                              "mini excavator earns more booked by partners than idle in "
                              "the yard."),
}


def _seed_review(session: Session, coordinator: User, sunset_on: date, renewed_sunset: date
                 ) -> None:
    """The first agreement's sunset review, from its opening to its renewal.

    The scheduler's sweep opened it 30 days before the sunset (its first run after
    midnight where the cluster is); four of the five businesses answered over the
    following days -- three renew, one change, each with what it learned; the
    coordinator renewed from the review ten days before the sunset (the same terms,
    the later sunset the agreement has today), which closed the review; and every
    business accepted the renewed version before the old one's sunset came."""
    opening = review.opens_on(sunset_on)
    first_sweep = review.local_midnight(opening, VALLEY_TIME.key) + timedelta(minutes=5)
    assert review.due_to_open(sunset_on, first_sweep.astimezone(VALLEY_TIME).date())
    version = agreements.agreement_in_force(session, coordinator.cluster_id)
    assert version is not None
    # The sweep's own per-cluster step (`open_due_reviews` calls it for each cluster due):
    # a sweep at a past moment would also open other clusters' long-gone reviews.
    review.open_review(session, coordinator.cluster_id, version.version, sunset_on,
                       first_sweep)
    opened = review.current_review(session, coordinator.cluster_id)
    assert opened is not None
    for number, (email, (choice, lessons)) in enumerate(REVIEW_ANSWERS.items()):
        review.answer(session, _owner(session, email), id_of(opened), choice, lessons,
                      _at(opening + timedelta(days=2 + 3 * number), 8 + 3 * number))
    renewed_at = _at(sunset_on - timedelta(days=10), 10)
    renewed = review.renew(session, coordinator, id_of(opened), renewed_sunset, renewed_at)
    for number, firm in enumerate(FIRMS):
        agreements.accept_agreement(session, _owner(session, firm.email), renewed.version,
                                    renewed_at + timedelta(days=1 + number, hours=number))


def _insure(session: Session, owner: User, coordinator: User, firm: DemoFirm,
            now: datetime) -> None:
    """The firm uploads a (pictured) certificate and the coordinator verifies it, as
    members do: eligibility counts only verified insurance."""
    picture = io.BytesIO()
    Image.new("RGB", (240, 320), (250, 250, 245)).save(picture, "PNG")
    expires_on = (now + timedelta(days=firm.insured_for_days)).date()
    certificate = insurance.submit_certificate(
        session, owner, _firm(owner), insurance.Statement(
            insurer="Valley Mutual", policy_number=f"VM-{_firm(owner):05d}",
            coverage_minor=firm.coverage_minor, expires_on=expires_on),
        check_document(picture.getvalue()), now)
    insurance.verify_certificate(session, coordinator, id_of(certificate),
                                 firm.coverage_minor, expires_on, now)


def _owner(session: Session, email: str) -> User:
    return session.exec(select(User).where(User.email == email)).one()


def _firm(owner: User) -> int:
    """The member business of a demo owner (every owner belongs to one)."""
    if owner.member_id is None:
        raise ValueError(f"{owner.email} is not a member's owner")
    return owner.member_id


def _seed_jobs(session: Session, now: datetime) -> OverflowJob:
    """A finished hand-off with ratings, an open hand-off and an open bid window;
    returns the finished hand-off."""
    maple, hernandez, laurentide = (_owner(session, firm.email) for firm in FIRMS[:3])
    start = now.date() + timedelta(days=7)

    def draft(**fields: object) -> JobDraft:
        base: dict[str, object] = dict(
            description="", site_lat=45.41, site_lng=-75.70, locality="Glebe, Ottawa",
            address="181 Glebe Ave", customer_name="R. Chen", customer_contact="613-555-0142",
            crew_days=4, starts_on=start, ends_on=start + timedelta(days=3),
            mode=JobMode.HANDOFF.value)
        base.update(fields)
        return JobDraft(**base)  # type: ignore[arg-type]  # defaults merged with overrides

    last_month = now - timedelta(days=32)  # so the coordinator has a month to settle
    on_site = last_month.astimezone(VALLEY_TIME).date()  # the valley's day, not UTC's
    finished = post_job(session, hernandez, draft(
        title="Planting beds for a new patio", trades=("planting",), value_minor=2_150_00,
        starts_on=on_site, ends_on=on_site), last_month)
    claim_job(session, laurentide, id_of(finished), last_month)
    report_done(session, laurentide, id_of(finished), last_month)
    confirm_completion(session, hernandez, id_of(finished), last_month)
    rate(session, hernandez, id_of(finished), _firm(laurentide), 5, True,
         "Clean work, on time.", last_month)
    post_job(session, hernandez, draft(
        title="Spring cleanup, 12 townhouses", trades=("mowing", "planting"),
        value_minor=4_800_00, description="Edging, mulch and first mow for a condo board."),
        now)
    window = post_job(session, maple, draft(
        title="Drainage swale behind a school field", trades=("drainage",),
        locality="Alta Vista, Ottawa", address="1500 Alta Vista Dr", site_lat=45.385,
        site_lng=-75.665, crew_days=10, value_minor=18_500_00, mode=JobMode.BID_WINDOW.value,
        closes_at=now + timedelta(days=3),
        description="About 120 m of swale with a perforated drain; grading to the catch basin."),
        now)
    place_bid(session, hernandez, id_of(window), BidTerms(16_900_00, 4, start,
                                                      "We can start the Monday after."), now)
    return finished


def _machine(name: str, kind: EquipmentKind, locality: str, hour: int, day: int,
             **changes: object) -> listings.ListingDraft:
    weekdays = tuple(listings.WeeklyHours(d, 7 * 60, 18 * 60) for d in range(5))
    base: dict[str, object] = dict(
        name=name, kind=kind.value, description="", locality=locality, base_lat=45.40,
        base_lng=-75.70, hour_rate_minor=hour, day_rate_minor=day, min_minutes=60,
        max_minutes=3 * 24 * 60, buffer_minutes=30, granularity_minutes=30,
        timezone="America/Toronto", needs_approval=False, cancel_cutoff_hours=24,
        cancel_fee_bp=5000, hours=weekdays)
    base.update(changes)
    return listings.ListingDraft(**base)  # type: ignore[arg-type]  # defaults + overrides


def _list_machines(session: Session, listed_at: datetime) -> tuple[Equipment, Equipment]:
    """The two machines members own outright, listed months ago (they have a history)."""
    hernandez, laurentide = (_owner(session, firm.email) for firm in FIRMS[1:3])
    grinder = listings.list_machine(session, laurentide, _machine(
        "Vermeer SC30TX stump grinder", EquipmentKind.STUMP_GRINDER, "Gatineau yard",
        45_00, 280_00, description="Tracked, fits through a 36-inch gate."), listed_at)
    excavator = listings.list_machine(session, hernandez, _machine(
        "Bobcat E35 mini excavator", EquipmentKind.MINI_EXCAVATOR, "Nepean yard", 85_00,
        520_00, needs_approval=True, buffer_minutes=60), listed_at)
    return grinder, excavator


def _seed_equipment(session: Session, coordinator: User, grinder_id: int, now: datetime
                    ) -> None:
    """The machine the cluster co-owns and rotates, and a booking of the grinder."""
    maple, hernandez, laurentide = (_owner(session, firm.email) for firm in FIRMS[:3])
    skid = listings.record_co_owned(session, coordinator, _machine(
        "Kubota SVL75 skid steer (co-owned)", EquipmentKind.SKID_STEER, "Cooperative shed",
        70_00, 420_00, hours=tuple(listings.WeeklyHours(d, 0, 1440) for d in range(7))),
        {_firm(m): share for m, share in ((maple, 5000), (hernandez, 3000),
                                             (laurentide, 2000))}, now)
    rotation.create_plan(session, coordinator, id_of(skid), RotationPeriod.WEEK.value,
                         now.date(), now)
    monday = now.date() + timedelta(days=7 - now.weekday())
    starts = datetime.combine(monday, datetime.min.time()).replace(hour=13)  # 08:00/09:00 Toronto
    booking.book(session, maple, grinder_id, starts.replace(tzinfo=now.tzinfo),
                 starts.replace(tzinfo=now.tzinfo) + timedelta(hours=4), now)


def _seed_disputes(session: Session, coordinator: User, grinder_id: int, patio_id: int,
                   now: datetime) -> None:
    """Two disputes, each step at its own moment within the agreement's windows.

    Decided: Laurentide disputed the referral fee of last month's patio job the day
    after it was confirmed, and the coordinator split it.  Open: Maple booked the
    grinder a few days ago, stopped early and disputes the booking fee; Maple and
    Laurentide have each said something, and the coordinator has yet to decide.
    Nobody else of the cluster sees either.
    """
    maple, hernandez, laurentide = (_owner(session, firm.email) for firm in FIRMS[:3])
    confirmed = now - timedelta(days=32)  # when _seed_jobs finished the patio job
    patio = disputes.open_dispute(
        session, laurentide, "job", patio_id, "referral_fee",
        "Hernández asked us on the phone to take the job at short notice and said the "
        "referral fee would be waived this time.", confirmed + timedelta(days=1))
    disputes.post_message(
        session, hernandez, id_of(patio), "We said half the fee, not none: our estimator "
        "had already spent a day on the design.", None, _NO_PHOTOS, None,
        confirmed + timedelta(days=2))
    disputes.decide(
        session, coordinator, id_of(patio), "split", None, 5_000,
        "Both remember a reduced fee and neither wrote it down. Half the referral fee "
        "is owed.", confirmed + timedelta(days=5))
    day = (now - timedelta(days=3)).astimezone(VALLEY_TIME).date()
    while day.weekday() > 4:  # the grinder is booked on working days
        day -= timedelta(days=1)
    # 16:00-18:00: after every history booking of the grinder and its buffer (by 15:30).
    made = booking.book(session, maple, grinder_id, _at(day, 16), _at(day, 18),
                        _at(day - timedelta(days=1), 9))
    booking.check_out(session, maple, id_of(made), None, "", None, _at(day, 16))
    booking.return_machine(session, maple, id_of(made), None, "Lost a cutting tooth "
                           "after an hour; stopped.", _at(day, 17))
    booking.close(session, laurentide, id_of(made), 0, "", _at(day, 18))
    after = day + timedelta(days=1)
    grinder = disputes.open_dispute(
        session, maple, "booking", id_of(made), "booking",
        "The grinder lost a cutting tooth after an hour and we had to stop. We should pay "
        "for the hour we used, not for the whole booking.", _at(after, 8))
    disputes.post_message(
        session, maple, id_of(grinder), "We kept the broken tooth and can bring it to the "
        "Gatineau yard.", None, _NO_PHOTOS, None, _at(after, 9))
    disputes.post_message(
        session, laurentide, id_of(grinder), "The teeth were checked the morning of the "
        "booking. A tooth breaks on a buried rock; that is wear, not our fault.", None,
        _NO_PHOTOS, None, _at(after, 14))


#: Where dispute photos would go: the demo's messages are text only, so none is written.
_NO_PHOTOS = Path("disputes")


def _weekday(month: str, number: int) -> date:
    """The `number`-th working day (Monday to Friday, from 0) of a YYYY-MM month."""
    day = date(int(month[:4]), int(month[5:7]), 1)
    while day.weekday() > 4 or number:
        number -= day.weekday() <= 4
        day += timedelta(days=1)
    return day


def _at(day: date, hour: int) -> datetime:
    """A wall-clock hour in the valley, as the aware instant the services take."""
    return datetime.combine(day, time(hour), tzinfo=VALLEY_TIME).astimezone(UTC)


def _seed_history(session: Session, coordinator: User, grinder_id: int, excavator_id: int,
                  now: datetime) -> None:
    """Six months of cooperation for the dashboard, each step at its own moment.

    Every month: Maple hands a planting job to Laurentide and Hernández awards a
    drainage job to Ottawa Valley Excavating by bid (both done, confirmed and
    rated, except last month's bid job, still under way); every other month
    Laurentide hands fencing to Green Fence; twice a paving job finds nobody and
    once a job is cancelled.  Maple books the grinder a few times a month, Green
    Fence the excavator (Hernández approves).  Months are settled up to the one
    before the demo's finished job (32 days ago), so the coordinator still has a
    month to settle.  Everything here is history, so its notifications are marked
    read; the demo's current jobs and booking, seeded afterwards, stay unread.
    """
    maple, hernandez, laurentide, excavating, fence = (_owner(session, f.email) for f in FIRMS)
    cluster = service.get_cluster(session, coordinator)
    current = current_month(cluster, now)
    keep_open = current_month(cluster, now - timedelta(days=32))  # and the months after
    for back in range(HISTORY_MONTHS, 0, -1):
        month = months_back(current, back)
        day = partial(_weekday, month)
        value = 1_800_00 + back * 150_00
        handed = post_job(session, maple, _history_draft(
            "Perennial beds for a townhouse row", ("planting",), value, day(6), day(8)),
            _at(day(1), 9))
        claim_job(session, laurentide, id_of(handed), _at(day(1), 15))
        report_done(session, laurentide, id_of(handed), _at(day(8), 17))
        confirm_completion(session, maple, id_of(handed), _at(day(9), 8))
        rate(session, maple, id_of(handed), _firm(laurentide), 4 + back % 2,
             back != 3, "", _at(day(9), 9))
        rate(session, laurentide, id_of(handed), _firm(maple), 5, True, "",
             _at(day(9), 10))
        window = post_job(session, hernandez, _history_draft(
            "French drain along a parking lot", ("drainage",), 9_500_00 + back * 700_00,
            day(10), day(14), mode=JobMode.BID_WINDOW.value, closes_at=_at(day(3), 17)),
            _at(day(2), 9))
        bid = place_bid(session, excavating, id_of(window), BidTerms(
            8_900_00 + back * 600_00, 3, day(10)), _at(day(2), 14))
        close_window(session, id_of(window), _at(day(3), 17))
        award_bid(session, hernandez, id_of(window), id_of(bid), _at(day(4), 9))
        if back > 1:
            report_done(session, excavating, id_of(window), _at(day(14), 17))
            confirm_completion(session, hernandez, id_of(window), _at(day(15), 9))
            rate(session, hernandez, id_of(window), _firm(excavating), 3 + back % 3,
                 back % 2 == 0, "", _at(day(15), 10))
        if back % 2 == 0:
            fencing = post_job(session, laurentide, _history_draft(
                "Cedar privacy fence, 40 m", ("fencing",), 3_200_00, day(9), day(11)),
                _at(day(5), 9))
            claim_job(session, fence, id_of(fencing), _at(day(5), 11))
            report_done(session, fence, id_of(fencing), _at(day(11), 17))
            confirm_completion(session, laurentide, id_of(fencing), _at(day(12), 9))
        if back in (5, 2):
            post_job(session, fence, _history_draft(
                "Interlock driveway, 60 m²", ("paving",), 2_600_00, day(12), day(13)),
                _at(day(7), 9))
        if back == 3:
            dropped = post_job(session, maple, _history_draft(
                "Irrigation for a sports field", ("irrigation",), 5_400_00, day(16), day(18)),
                _at(day(7), 9))
            cancel_job(session, maple, id_of(dropped), "The customer postponed to next year.",
                       _at(day(8), 9))
        for slot in range(2 + back % 3):
            booking.book(session, maple, grinder_id, _at(day(3 + 4 * slot), 8),
                         _at(day(3 + 4 * slot), 12 + slot), _at(day(0), 9))
        request = booking.book(session, fence, excavator_id, _at(day(16), 7),
                               _at(day(16), 15), _at(day(0), 10))
        booking.approve(session, hernandez, id_of(request), _at(day(0), 16))
        if month < keep_open:
            settled_on = _at(_weekday(next_month(month), 0), 10)
            draft_for(session, coordinator, month, settled_on)
            approve(session, coordinator, month, {}, settled_on)
    # The paving jobs nobody took are past their start: closed by the same sweep the
    # scheduler runs, so no past job shows a Claim button.
    expire_due_jobs(session, now)
    for user in demo_logins(session):
        mark_all_read(session, id_of(user), now)


def _history_draft(title: str, trades: tuple[str, ...], value: int, starts: date, ends: date,
                   **fields: object) -> JobDraft:
    base: dict[str, object] = dict(
        title=title, description="", trades=trades, site_lat=45.41, site_lng=-75.70,
        locality="Centretown, Ottawa", address="310 Bank St", customer_name="M. Okafor",
        customer_contact="613-555-0187", crew_days=3, starts_on=starts, ends_on=ends,
        value_minor=value, mode=JobMode.HANDOFF.value)
    base.update(fields)
    return JobDraft(**base)  # type: ignore[arg-type]  # defaults merged with overrides


def demo_logins(session: Session) -> list[User]:
    """The demo accounts, coordinator first, for the start-up banner (`login_lines`)."""
    emails = [COORDINATOR_EMAIL, *(f.email for f in FIRMS)]
    users = {u.email: u for u in session.exec(select(User).where(col(User.email).in_(emails)))}
    return [users[e] for e in emails if e in users]


def login_lines(session: Session) -> list[str]:
    """One line per demo login for the start-up banner: e-mail, firm, role, language
    (the language its pages come in, by its own name)."""
    from babel import Locale

    from marketplace.clusters.models import Member
    from marketplace.i18n import regional

    lines = []
    for user in demo_logins(session):
        cluster = session.get(Cluster, user.cluster_id)
        member = session.get(Member, user.member_id) if user.member_id else None
        firm = member.name if member else (cluster.name if cluster else "")
        locale = regional(user.locale, cluster) if user.locale else (
            cluster.default_locale if cluster else "en")
        language = Locale.parse(locale).get_display_name(locale) or locale
        lines.append(f"  {user.email:<32} {firm:<28} {user.role:<11} {language}")
    return lines
