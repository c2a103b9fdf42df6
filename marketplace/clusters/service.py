"""Rules for clusters, member profiles and people.

Every function takes the session, the acting user where it matters, and plain
values; none touches Flask, so views, the API, the CLI and the scheduler all
share them.  Lookups are always scoped to the viewer's cluster: an id from
another cluster is indistinguishable from an id that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import available_timezones

from sqlalchemy import ColumnElement, exists
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from marketplace.clusters.accounts import (
    check_password_strength,
    find_user_by_email,
    hash_password,
    hasher_of,
    normalise_email,
)
from marketplace.clusters.exit.models import MemberExit
from marketplace.clusters.models import (
    ADDRESSEE,
    Addressee,
    Cluster,
    Member,
    MemberTrade,
    Role,
    UnitSystem,
    User,
)
from marketplace.clusters.service_area import record_service_area_change
from marketplace.clusters.trades import is_trade
from marketplace.db import utcnow
from marketplace.errors import N_, Forbidden, ValidationError, not_found
from marketplace.persisted import id_of

SUPPORTED_CURRENCIES = ("USD", "CAD", "MXN", "EUR")
SUPPORTED_LOCALES = (
    "en", "en_US", "en_CA", "es", "es_MX", "es_US", "fr", "fr_CA", "fr_FR", "de", "de_DE",
)
_TIMEZONES = frozenset(available_timezones())


def is_timezone(name: str) -> bool:
    """True for an IANA time zone name such as "America/Toronto"."""
    return name in _TIMEZONES


def _require(condition: bool, field: str, message: str, errors: dict[str, str]) -> None:
    if not condition:
        errors[field] = message


def _raise_if(errors: dict[str, str]) -> None:
    if errors:
        raise ValidationError(
            "invalid_input", N_("Some fields need your attention."), fields=errors
        )


def _collect_errors(*checks: Callable[[], None]) -> None:
    """Run every check and report all field errors at once, not one per try."""
    fields: dict[str, str] = {}
    params: dict[str, object] = {}
    for check in checks:
        try:
            check()
        except ValidationError as error:
            fields.update(error.fields)
            params.update(error.params)
    if fields:
        raise ValidationError("invalid_input", N_("Some fields need your attention."),
                              fields=fields, params=params)


@dataclass(frozen=True)
class ClusterSettings:
    name: str
    currency: str
    default_locale: str
    timezone: str
    unit_system: str = UnitSystem.METRIC.value


def _validate_cluster_settings(settings: ClusterSettings) -> None:
    errors: dict[str, str] = {}
    _require(0 < len(settings.name.strip()) <= 120, "cluster_name",
             N_("Give the cluster a name of up to 120 characters."), errors)
    _require(settings.currency in SUPPORTED_CURRENCIES, "currency",
             N_("Choose one of the supported currencies."), errors)
    _require(settings.default_locale in SUPPORTED_LOCALES, "default_locale",
             N_("Choose one of the supported languages."), errors)
    _require(is_timezone(settings.timezone), "timezone",
             N_("Choose a time zone from the list, such as America/Toronto."), errors)
    _require(settings.unit_system in {u.value for u in UnitSystem}, "unit_system",
             N_("Choose metric or imperial units."), errors)
    _raise_if(errors)


def validate_new_account(session: Session, name: str, email: str, password: str) -> None:
    """Check a person's sign-up details before anything is written."""
    errors: dict[str, str] = {}
    _require(0 < len(name.strip()) <= 120, "name", N_("Enter your name."), errors)
    clean = normalise_email(email)
    _require("@" in clean and "." in clean.split("@")[-1] and len(clean) <= 254, "email",
             N_("Enter a valid e-mail address."), errors)
    if "email" not in errors and find_user_by_email(session, clean) is not None:
        errors["email"] = N_("An account with this e-mail address exists already. Log in instead.")
    _raise_if(errors)
    check_password_strength(password)


def create_cluster(
    session: Session,
    settings: ClusterSettings,
    coordinator_name: str,
    coordinator_email: str,
    password: str,
    now: datetime,
) -> tuple[Cluster, User]:
    """Start a new cluster with its first coordinator, in one transaction."""
    _collect_errors(
        lambda: _validate_cluster_settings(settings),
        lambda: validate_new_account(session, coordinator_name, coordinator_email, password),
    )
    cluster = Cluster(
        name=settings.name.strip(), currency=settings.currency,
        default_locale=settings.default_locale, timezone=settings.timezone,
        unit_system=settings.unit_system, created_at=now,
    )
    session.add(cluster)
    session.flush()
    coordinator = User(
        email=normalise_email(coordinator_email), name=coordinator_name.strip(),
        password_hash=hash_password(password, hasher_of(session)),
        cluster_id=id_of(cluster), role=Role.COORDINATOR,
        locale=settings.default_locale, created_at=now,
    )
    session.add(coordinator)
    session.commit()
    return cluster, coordinator


def update_cluster(session: Session, actor: User, settings: ClusterSettings) -> Cluster:
    """Coordinators change the cluster's name and regional defaults."""
    require_coordinator(actor)
    _validate_cluster_settings(settings)
    # Taken for update first, so a job or listing being written in the old currency
    # commits before the check below sees it (see lock_cluster_settings).
    cluster = session.exec(select(Cluster).where(Cluster.id == actor.cluster_id)
                           .with_for_update(key_share=True)
                           .execution_options(populate_existing=True)).one()
    if settings.currency != cluster.currency and money_in_currency(session, id_of(cluster)):
        message = N_("The currency cannot change once the cluster has jobs, listings or "
                     "ledger entries: their amounts were agreed in %(currency)s, and a "
                     "month that mixed currencies could not be netted to the cent.")
        raise ValidationError("currency_in_use", message, fields={"currency": message},
                              params={"currency": cluster.currency})
    cluster.name = settings.name.strip()
    cluster.currency = settings.currency
    cluster.default_locale = settings.default_locale
    cluster.timezone = settings.timezone
    cluster.unit_system = settings.unit_system
    session.add(cluster)
    session.commit()
    return cluster


def lock_cluster_settings(session: Session, cluster_id: int) -> tuple[str, str]:
    """The cluster's (time zone, currency) as committed now, held until this commit.

    A shared row lock on PostgreSQL, taken by everything that writes an amount
    in the cluster's currency or an entry in its month: those writers do not
    wait for each other, but an approval or a settings change (which take the
    row for update) waits for each of them, and a writer arriving meanwhile
    waits and then reads the new settings.  SQLite's write lock, taken at
    BEGIN, does the same.
    """
    row = session.exec(select(Cluster.timezone, Cluster.currency)
                       .where(Cluster.id == cluster_id).with_for_update(read=True)).one()
    return row[0], row[1]


def money_in_currency(session: Session, cluster_id: int) -> bool:
    """Whether any amount of the cluster is stored in its currency.

    Every table with both a cluster and a currency column holds amounts in it
    (jobs, contracts, listings, bookings, ledger entries), found from the
    schema itself so a new money table is covered without being listed here.
    """
    for table in SQLModel.metadata.sorted_tables:
        if {"cluster_id", "currency"} <= set(table.c.keys()):
            if session.execute(select(table.c.cluster_id).where(
                    table.c.cluster_id == cluster_id).limit(1)).first() is not None:
                return True
    return False


def require_coordinator(actor: User) -> None:
    """Refuse anyone but a coordinator of the actor's own cluster."""
    if actor.role != Role.COORDINATOR:
        raise Forbidden("coordinator_only", N_("Only the cluster coordinator can do this."))


def get_cluster(session: Session, viewer: User) -> Cluster:
    """The viewer's own cluster."""
    cluster = session.get(Cluster, viewer.cluster_id)
    assert cluster is not None
    return cluster


def get_member(session: Session, viewer: User, member_id: int) -> Member:
    """A member of the viewer's cluster, or NotFound (never a hint it exists elsewhere)."""
    member = session.get(Member, member_id)
    if member is None or member.cluster_id != viewer.cluster_id:
        raise not_found()
    return member


def list_members(session: Session, viewer: User) -> list[Member]:
    """Every member business of the viewer's cluster, by name."""
    return list(session.exec(
        select(Member).where(Member.cluster_id == viewer.cluster_id).order_by(Member.name)
    ))


def member_trades(session: Session, member_id: int) -> list[str]:
    """The trade codes a member offers, sorted."""
    return sorted(session.exec(
        select(MemberTrade.trade).where(MemberTrade.member_id == member_id)
    ))


def member_users(session: Session, viewer: User, member_id: int) -> list[User]:
    """The people of a member business the viewer may see."""
    get_member(session, viewer, member_id)
    return list(session.exec(select(User).where(User.member_id == member_id).order_by(User.name)))


def cluster_people(session: Session, coordinator: User) -> list[User]:
    """Every person of the coordinator's cluster (who can be reached, and how)."""
    require_coordinator(coordinator)
    return list(session.exec(select(User).where(User.cluster_id == coordinator.cluster_id)
                             .order_by(User.name)))


def acting_member(session: Session, actor: User) -> Member:
    """The member business the actor works for; coordinators act for none."""
    if actor.member_id is None:
        raise Forbidden("member_only", N_("Only people of a member business can do this."))
    member = session.get(Member, actor.member_id)
    assert member is not None
    return member


def active_users_of(session: Session, member_ids: Iterable[int | None], *,
                    include_former: bool = False) -> list[Addressee]:
    """Every active person of these member businesses (whom a notification reaches).

    A business whose exit took effect (its `MemberExit` row) hears nothing more of the
    cluster's activity: its people are left out, unless `include_former` -- which only
    the exit's own notices and the statements it can still read pass."""
    ids = sorted({m for m in member_ids if m is not None})
    if not ids:
        return []
    query = sa_select(*ADDRESSEE).where(col(User.member_id).in_(ids),
                                        col(User.active).is_(True))
    if not include_former:
        query = query.where(not_left())
    return [Addressee(*row) for row in session.execute(query.order_by(col(User.id)))]


def not_left() -> ColumnElement[bool]:
    """A query's condition on `User`: the person's business has not left the cluster (no
    exit took effect); a coordinator, of no business, passes.  What `active_users_of`
    leaves former members out by, for a notice whose people are chosen otherwise."""
    return ~exists().where(col(MemberExit.member_id) == User.member_id)


@dataclass(frozen=True)
class MemberProfile:
    name: str
    trades: tuple[str, ...]
    base_lat: float | None
    base_lng: float | None
    service_radius_km: float | None
    certifications: str
    # No insurance here: a member's insurance counts only as the coordinator verified it
    # from the uploaded certificate (clusters/insurance/).


def can_manage_member(actor: User, member: Member) -> bool:
    """Owners manage their own business; coordinators manage any in their cluster."""
    if actor.cluster_id != member.cluster_id:
        return False
    return actor.role == Role.COORDINATOR or (
        actor.role == Role.OWNER and actor.member_id == member.id
    )


def _validate_profile(profile: MemberProfile) -> None:
    errors: dict[str, str] = {}
    _require(0 < len(profile.name.strip()) <= 120, "name",
             N_("Enter the business name (up to 120 characters)."), errors)
    _require(all(is_trade(t) for t in profile.trades), "trades",
             N_("Choose trades from the list."), errors)
    _require(profile.base_lat is None or -90 <= profile.base_lat <= 90, "base_lat",
             N_("Latitude must be between -90 and 90."), errors)
    _require(profile.base_lng is None or -180 <= profile.base_lng <= 180, "base_lng",
             N_("Longitude must be between -180 and 180."), errors)
    _require((profile.base_lat is None) == (profile.base_lng is None), "base_lng",
             N_("Give both latitude and longitude, or neither."), errors)
    _require(profile.service_radius_km is None or 0 < profile.service_radius_km <= 1000,
             "service_radius_km", N_("The service radius must be between 0 and 1000 km."),
             errors)
    _require(len(profile.certifications) <= 2000, "certifications",
             N_("Keep certifications under 2000 characters."), errors)
    _raise_if(errors)


def update_member_profile(
    session: Session, actor: User, member_id: int, profile: MemberProfile,
    now: datetime | None = None,
) -> Member:
    """Save a member's business profile, trades included, all or nothing (a change of
    its base or radius is recorded, and limited: clusters/service_area.py)."""
    member = get_member(session, actor, member_id)
    if not can_manage_member(actor, member):
        raise Forbidden("not_member_owner",
                        N_("Only an owner of this business or the coordinator can edit it."))
    _validate_profile(profile)
    record_service_area_change(session, actor, member, (profile.base_lat, profile.base_lng),
                               profile.service_radius_km, now or utcnow())
    member.name = profile.name.strip()
    member.base_lat = profile.base_lat
    member.base_lng = profile.base_lng
    member.service_radius_km = profile.service_radius_km
    member.certifications = profile.certifications.strip()
    session.add(member)
    for row in session.exec(select(MemberTrade).where(MemberTrade.member_id == member.id)):
        session.delete(row)
    session.flush()
    for trade in sorted(set(profile.trades)):
        session.add(MemberTrade(member_id=id_of(member), trade=trade))
    session.commit()
    return member


def update_preferences(
    session: Session, actor: User, locale: str | None, timezone: str | None,
    unit_system: str | None,
) -> User:
    """A person's own language, time zone and unit choices (None = cluster default)."""
    errors: dict[str, str] = {}
    _require(locale is None or locale in SUPPORTED_LOCALES, "locale",
             N_("Choose one of the supported languages."), errors)
    _require(timezone is None or is_timezone(timezone), "timezone",
             N_("Choose a time zone from the list, such as America/Toronto."), errors)
    _require(unit_system is None or unit_system in {u.value for u in UnitSystem},
             "unit_system", N_("Choose metric or imperial units."), errors)
    _raise_if(errors)
    actor.locale = locale
    actor.timezone = timezone
    actor.unit_system = unit_system
    session.add(actor)
    session.commit()
    return actor
