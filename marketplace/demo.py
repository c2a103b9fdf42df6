"""Demo data: a living cluster for a newcomer's first look.

Built through the same service functions users go through (invites are
accepted, the agreement is published and accepted), so the demo can never
hold a state the product itself could not reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import Session, select

from marketplace.clusters import agreements, invites, service
from marketplace.clusters.models import Cluster, User
from marketplace.equipment import booking, listings, rotation
from marketplace.equipment.models import EquipmentKind, RotationPeriod
from marketplace.jobs.bidding import BidTerms, place_bid
from marketplace.jobs.completion import confirm_completion, rate, report_done
from marketplace.jobs.models import JobMode
from marketplace.jobs.service import JobDraft, claim_job, post_job

DEMO_CLUSTER = "Valley Green Cooperative"
DEMO_PASSWORD = "valley-green-demo"
COORDINATOR_EMAIL = "coordinator@valleygreen.example"


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


FIRMS = (
    DemoFirm("Maple Ridge Lawn & Garden", "Olivia Tremblay", "olivia@mapleridge.example", "en",
             ("mowing", "planting", "irrigation"), 45.4215, -75.6972, 40, 400),
    DemoFirm("Hernández Hardscapes", "Mateo Hernández", "mateo@hernandez.example", "es",
             ("hardscaping", "masonry", "paving", "drainage"), 45.3876, -75.6960, 35, 300),
    DemoFirm("Paysagement Laurentide", "Camille Gagnon", "camille@laurentide.example", "fr",
             ("tree_work", "planting", "snow_removal"), 45.4765, -75.7013, 50, 500),
    DemoFirm("Ottawa Valley Excavating", "Noah Campbell", "noah@ovexcavating.example", "en",
             ("grading", "drainage", "general_contracting"), 45.3500, -75.9000, 60, 20),
    DemoFirm("Green Fence & Deck", "Sofía Ramírez", "sofia@greenfence.example", "es",
             ("fencing", "general_contracting"), 45.2700, -75.7400, 25, 365),
)


def seed_demo(session: Session, secret_key: str, now: datetime) -> bool:
    """Create the demo cluster once; returns False when it already exists."""
    if session.exec(select(Cluster).where(Cluster.name == DEMO_CLUSTER)).first():
        return False
    _cluster, coordinator = service.create_cluster(
        session,
        service.ClusterSettings(name=DEMO_CLUSTER, currency="CAD", default_locale="en_CA",
                                timezone="America/Toronto", unit_system="metric"),
        "Priya Natarajan", COORDINATOR_EMAIL, DEMO_PASSWORD, now)
    agreement = agreements.publish_agreement(session, coordinator, agreements.AgreementTerms(
        purpose="Keep work that one of us cannot take inside the valley, share the machines "
                "none of us can keep busy alone, and split the money exactly as agreed.",
        scope_overflow_jobs=True, scope_equipment=True, scope_joint_bids=True,
        referral_fee_bp=500, platform_fee_bp=100,
        sunset_on=date(now.year + 2, 12, 31), exit_notice_days=30,
        information_rules="Partners see what a job needs and where it is, roughly. Bid prices "
                          "stay with the poster. Customer names and addresses are shared only "
                          "with the member who wins the job.",
    ), now)
    for firm in FIRMS:
        invite = invites.create_member_invite(session, coordinator, firm.email, firm.name, now, 7)
        owner = invites.accept_invite(session, secret_key, invites.invite_token(secret_key, invite),
                                      firm.owner, DEMO_PASSWORD, now)
        service.update_preferences(session, owner, firm.locale, None, None)
        assert owner.member_id is not None
        service.update_member_profile(session, owner, owner.member_id, service.MemberProfile(
            name=firm.name, trades=firm.trades, base_lat=firm.lat, base_lng=firm.lng,
            service_radius_km=firm.radius_km,
            insurance_expires_on=(now + timedelta(days=firm.insured_for_days)).date(),
            certifications="",
        ))
        agreements.accept_agreement(session, owner, agreement.version, now)
    _seed_jobs(session, now)
    _seed_equipment(session, coordinator, now)
    return True


def _owner(session: Session, email: str) -> User:
    return session.exec(select(User).where(User.email == email)).one()


def _seed_jobs(session: Session, now: datetime) -> None:
    """A finished hand-off with ratings, an open hand-off and an open bid window."""
    maple, hernandez, laurentide = (_owner(session, firm.email) for firm in FIRMS[:3])
    start = now.date() + timedelta(days=7)

    def draft(**fields: object) -> JobDraft:
        base: dict[str, object] = dict(
            description="", site_lat=45.41, site_lng=-75.70, locality="Glebe, Ottawa",
            address="181 Glebe Ave", customer_name="R. Chen", customer_contact="613-555-0142",
            crew_days=4, starts_on=start, ends_on=start + timedelta(days=3),
            mode=JobMode.HANDOFF.value)
        base.update(fields)
        return JobDraft(**base)  # type: ignore[arg-type]

    last_month = now - timedelta(days=32)  # so the coordinator has a month to settle
    finished = post_job(session, hernandez, draft(
        title="Planting beds for a new patio", trades=("planting",), value_minor=2_150_00,
        starts_on=last_month.date(), ends_on=last_month.date()), last_month)
    claim_job(session, laurentide, finished.id, last_month)  # type: ignore[arg-type]
    report_done(session, laurentide, finished.id, last_month)  # type: ignore[arg-type]
    confirm_completion(session, hernandez, finished.id, last_month)  # type: ignore[arg-type]
    rate(session, hernandez, finished.id, laurentide.member_id, 5, True,  # type: ignore[arg-type]
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
    place_bid(session, hernandez, window.id, BidTerms(16_900_00, 4, start,  # type: ignore[arg-type]
                                                      "We can start the Monday after."), now)


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
    return listings.ListingDraft(**base)  # type: ignore[arg-type]


def _seed_equipment(session: Session, coordinator: User, now: datetime) -> None:
    """A machine each of two firms owns, one the cluster co-owns and rotates, a booking."""
    maple, hernandez, laurentide = (_owner(session, firm.email) for firm in FIRMS[:3])
    grinder = listings.list_machine(session, laurentide, _machine(
        "Vermeer SC30TX stump grinder", EquipmentKind.STUMP_GRINDER, "Gatineau yard",
        45_00, 280_00, description="Tracked, fits through a 36-inch gate."), now)
    listings.list_machine(session, hernandez, _machine(
        "Bobcat E35 mini excavator", EquipmentKind.MINI_EXCAVATOR, "Nepean yard", 85_00,
        520_00, needs_approval=True, buffer_minutes=60), now)
    skid = listings.record_co_owned(session, coordinator, _machine(
        "Kubota SVL75 skid steer (co-owned)", EquipmentKind.SKID_STEER, "Cooperative shed",
        70_00, 420_00, hours=tuple(listings.WeeklyHours(d, 0, 1440) for d in range(7))),
        {m.member_id: share for m, share in ((maple, 5000), (hernandez, 3000),  # type: ignore[misc]
                                             (laurentide, 2000))}, now)
    rotation.create_plan(session, coordinator, skid.id, RotationPeriod.WEEK.value,  # type: ignore[arg-type]
                         now.date(), now)
    monday = now.date() + timedelta(days=7 - now.weekday())
    starts = datetime.combine(monday, datetime.min.time()).replace(hour=13)  # 08:00/09:00 Toronto
    booking.book(session, maple, grinder.id, starts.replace(tzinfo=now.tzinfo),  # type: ignore[arg-type]
                 starts.replace(tzinfo=now.tzinfo) + timedelta(hours=4), now)


def demo_logins(session: Session) -> list[User]:
    """The demo accounts, coordinator first, for the start-up banner."""
    emails = [COORDINATOR_EMAIL, *(f.email for f in FIRMS)]
    users = {u.email: u for u in session.exec(select(User).where(User.email.in_(emails)))}  # type: ignore[attr-defined]
    return [users[e] for e in emails if e in users]
