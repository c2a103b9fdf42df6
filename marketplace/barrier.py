"""The information barrier as data: which fields of each resource each audience may receive.

`TABLE` is the contract.  The builders (`jobs/visibility.py` for jobs and bids,
`equipment/readmodels.py` for machines, bookings and a machine's week) assemble a
resource's whole dict and hand it to `cut`, which keeps only the fields the viewer's audience is
listed for here; so a field added to a builder but not to this table never leaves the
process, and tests/test_barrier_contract.py fails until it is listed (or dropped).

Audiences, relative to one job (machines and bookings: see the equipment section):

- poster: a person of the member that posted the job;
- party: a person of a member in the job's contract (the claimant, the winning
  bidders) -- and, for one bid, a person of a member in that bid (its lead or a
  co-bidder of a joint bid);
- partner: another member of the cluster while the job is on offer (open, or its bid
  window closed and not yet awarded).  Eligibility decides what a member may *do*
  with a job, not what it may read of it, so the barrier does not ask;
- other_member: a member of the cluster not party to it once it left the market
  (awarded, done, confirmed, cancelled);
- coordinator: the cluster's coordinator (no business of its own, so no distance);
- other_cluster: anyone from another cluster: nothing at all.

Two outputs are not field-by-field, and their rule lives next to the figures:

- the dashboard's cluster totals: `dashboard/disclosure.py` publishes a pooled cell
  only for a closed month and only when it hides at least k other members' amounts
  that this table keeps from the viewer (a bid price, a booking, a fee);
- statements (page, CSV, print, the mailed copy): a member's ledger lines go whole to
  that member and to the coordinator, and to nobody else (`ledger/views.py`).

No flask here, and nothing from the domains: callers pass plain facts.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from enum import StrEnum
from typing import Any


class Audience(StrEnum):
    POSTER = "poster"
    PARTY = "party"
    PARTNER = "partner"
    OTHER_MEMBER = "other_member"
    COORDINATOR = "coordinator"
    OTHER_CLUSTER = "other_cluster"


# -- resources --------------------------------------------------------------------------

JOB = "job"
BIDS = "bids"  # the bid list of a job: how many were submitted, and the bids one may see
BID = "bid"
BID_SHARE = "bid_share"  # one member's share of a (joint) bid, inside `bid.shares`

#: What the cluster agreed every member may know of a job on offer (the card).
JOB_CARD = frozenset({
    "id", "title", "description", "mode", "status", "trades", "locality",
    "approx_lat", "approx_lng", "crew_days", "starts_on", "ends_on", "value_minor",
    "currency", "closes_at", "poster_member_id",
})
#: Who took the job, or why it was cancelled.
JOB_OUTCOME = frozenset({"awarded_member_id", "cancel_reason"})
#: How far the job is from the viewer's own base: to the site for poster and parties,
#: whole km to the approximate point for other members, none for the coordinator.
JOB_DISTANCE = frozenset({"distance_km", "distance_precision"})
#: The customer: only for the poster and, once the contract exists, its parties.
JOB_CUSTOMER = frozenset({"site_lat", "site_lng", "address", "customer_name",
                          "customer_contact"})

BID_WHOLE = frozenset({"id", "member_id", "price_minor", "crew_size", "earliest_start",
                       "note", "is_joint", "status", "shares"})
SHARE_WHOLE = frozenset({"member_id", "share_bp", "confirmed"})
BIDS_SUMMARY = frozenset({"count", "bids"})

_NOTHING: frozenset[str] = frozenset()
_INSIDERS = JOB_CARD | JOB_OUTCOME | JOB_DISTANCE | JOB_CUSTOMER
_MEMBERS = JOB_CARD | JOB_OUTCOME | JOB_DISTANCE

_JOBS: Mapping[str, Mapping[Audience, frozenset[str]]] = {
    JOB: {
        Audience.POSTER: _INSIDERS,
        Audience.PARTY: _INSIDERS,
        Audience.PARTNER: _MEMBERS,
        Audience.OTHER_MEMBER: _MEMBERS,
        Audience.COORDINATOR: JOB_CARD | JOB_OUTCOME,
        Audience.OTHER_CLUSTER: _NOTHING,
    },
    # Everyone in the cluster may know how many bids came in; which bids they see is
    # decided per bid (below): a bid nobody may receive a field of is left out.
    BIDS: {
        Audience.POSTER: BIDS_SUMMARY,
        Audience.PARTY: BIDS_SUMMARY,
        Audience.PARTNER: BIDS_SUMMARY,
        Audience.OTHER_MEMBER: BIDS_SUMMARY,
        Audience.COORDINATOR: BIDS_SUMMARY,
        Audience.OTHER_CLUSTER: _NOTHING,
    },
    # A bid, relative to that bid: the poster (once it is submitted) and the bid's own
    # parties see all of it; a rival, a coordinator or a contract party of another bid
    # sees none of it, not even that it exists beyond the count.
    BID: {
        Audience.POSTER: BID_WHOLE,
        Audience.PARTY: BID_WHOLE,
        Audience.PARTNER: _NOTHING,
        Audience.OTHER_MEMBER: _NOTHING,
        Audience.COORDINATOR: _NOTHING,
        Audience.OTHER_CLUSTER: _NOTHING,
    },
    BID_SHARE: {
        Audience.POSTER: SHARE_WHOLE,
        Audience.PARTY: SHARE_WHOLE,
        Audience.PARTNER: _NOTHING,
        Audience.OTHER_MEMBER: _NOTHING,
        Audience.COORDINATOR: _NOTHING,
        Audience.OTHER_CLUSTER: _NOTHING,
    },
}

# -- equipment --------------------------------------------------------------------------
#
# Relative to one machine: POSTER is a member that owns it (alone or as a co-owner),
# COORDINATOR the cluster's coordinator, OTHER_MEMBER any other member of the cluster
# (PARTY and PARTNER read a machine as OTHER_MEMBER does).  Relative to one booking:
# PARTY is the member that booked it, POSTER an owner of its machine.

MACHINE = "machine"
MACHINE_OWNER = "machine_owner"  # one owner of a machine, in the machine's owner list
BOOKING = "booking"
SLOT = "slot"  # one labelled piece of a machine's week (calendar.Segment)
CUSTODY = "custody"  # a co-owner's rotation period of a co-owned machine

#: What a member needs to decide whether to book a machine: the listing, never the
#: yard's coordinates (base_lat/base_lng are the owner's business address).
MACHINE_LISTING = frozenset({
    "id", "name", "kind", "description", "locality", "status", "hour_rate_minor",
    "day_rate_minor", "currency", "timezone", "min_minutes", "max_minutes",
    "buffer_minutes", "granularity_minutes", "needs_approval", "cancel_cutoff_hours",
    "cancel_fee_bp",
})
#: Who owns it is known to every member (so they know whom to ask); how much each
#: owns is the co-owners' and the coordinator's business.
OWNER_NAME = frozenset({"member_id"})
OWNER_WHOLE = OWNER_NAME | {"share_bp"}
#: A booking: what was booked, when, at what price, and how the hand-over went.
BOOKING_WHOLE = frozenset({
    "id", "equipment_id", "member_id", "status", "starts_at", "ends_at", "price_minor",
    "currency", "in_custody", "checkout_meter", "checkout_note", "return_meter",
    "return_note", "damage_minor", "damage_note", "cancel_fee_minor", "cancel_reason",
})
#: A piece of the week: everyone sees that it is free, taken or blocked (and an owner's
#: note on a blackout); who booked it and which booking it is, only the booking's
#: parties and the coordinator (a custody piece names its holder as CUSTODY allows).
SLOT_SHAPE = frozenset({"starts_at", "ends_at", "kind", "note"})
SLOT_HOLDER = frozenset({"booking_id", "member_id"})

#: A rotation period: the cluster co-owns the machine, so every member may know which
#: co-owner holds it when (whom to ask); a week's custody piece shows the same.
CUSTODY_WHOLE = frozenset({"id", "equipment_id", "member_id", "starts_at", "ends_at",
                           "released"})
_CLUSTER_WIDE: dict[Audience, frozenset[str]] = {
    a: CUSTODY_WHOLE for a in Audience if a is not Audience.OTHER_CLUSTER}

_EQUIPMENT: Mapping[str, Mapping[Audience, frozenset[str]]] = {
    MACHINE: {
        Audience.POSTER: MACHINE_LISTING,
        Audience.PARTY: MACHINE_LISTING,
        Audience.PARTNER: MACHINE_LISTING,
        Audience.OTHER_MEMBER: MACHINE_LISTING,
        Audience.COORDINATOR: MACHINE_LISTING,
        Audience.OTHER_CLUSTER: _NOTHING,
    },
    MACHINE_OWNER: {
        Audience.POSTER: OWNER_WHOLE,
        Audience.PARTY: OWNER_NAME,
        Audience.PARTNER: OWNER_NAME,
        Audience.OTHER_MEMBER: OWNER_NAME,
        Audience.COORDINATOR: OWNER_WHOLE,
        Audience.OTHER_CLUSTER: _NOTHING,
    },
    # A booking is its booker's and its machine's owners' business; the coordinator
    # settles its money.  A rival learns only that the slot is taken (SLOT).
    BOOKING: {
        Audience.POSTER: BOOKING_WHOLE,
        Audience.PARTY: BOOKING_WHOLE,
        Audience.PARTNER: _NOTHING,
        Audience.OTHER_MEMBER: _NOTHING,
        Audience.COORDINATOR: BOOKING_WHOLE,
        Audience.OTHER_CLUSTER: _NOTHING,
    },
    SLOT: {
        Audience.POSTER: SLOT_SHAPE | SLOT_HOLDER,
        Audience.PARTY: SLOT_SHAPE | SLOT_HOLDER,
        Audience.PARTNER: SLOT_SHAPE,
        Audience.OTHER_MEMBER: SLOT_SHAPE,
        Audience.COORDINATOR: SLOT_SHAPE | SLOT_HOLDER,
        Audience.OTHER_CLUSTER: _NOTHING,
    },
    CUSTODY: {**_CLUSTER_WIDE, Audience.OTHER_CLUSTER: _NOTHING},
}
#: resource -> audience -> the fields that audience may receive.  Every audience is
#: listed for every resource, so a missing entry is a mistake, never a default.
TABLE: Mapping[str, Mapping[Audience, frozenset[str]]] = {**_JOBS, **_EQUIPMENT}

#: How a job's notification payload (service.py, bidding.py, completion.py) names a
#: field of another resource; every other key of such a payload is the job's own field.
NOTICE_KEYS: Mapping[str, tuple[str, str]] = {
    "job_id": (JOB, "id"),
    "bid_count": (BIDS, "count"),
    "bid_id": (BID, "id"),
    "member_id": (BID, "member_id"),  # bid.received: the member that bid
}


def fields(resource: str, audience: Audience) -> frozenset[str]:
    """The fields of `resource` that `audience` may receive."""
    return TABLE[resource][audience]


def known_fields(resource: str) -> frozenset[str]:
    """Every field of `resource` that some audience may receive."""
    return frozenset().union(*TABLE[resource].values())


def may_receive(resource: str, audience: Audience) -> bool:
    """Whether `audience` may receive anything of `resource` (else leave it out whole)."""
    return bool(TABLE[resource][audience])


class ReadModel(dict[str, Any]):
    """A resource cut to what one audience may receive.

    A withheld field is absent: JSON, API and socket payloads never carry its name.  A
    template asking for a withheld field of the resource reads None, as it would for an
    empty one; asking for a field the resource does not have is still a KeyError."""

    __slots__ = ("resource", "audience")

    def __init__(self, resource: str, audience: Audience, data: Mapping[str, Any]) -> None:
        super().__init__(data)
        self.resource = resource
        self.audience = audience

    def __missing__(self, key: str) -> None:
        if key in known_fields(self.resource):
            return None
        raise KeyError(key)

    def __reduce__(self) -> Any:  # copies and pickles are plain dicts of what it holds
        return (dict, (dict(self),))


def cut(resource: str, audience: Audience, data: Mapping[str, Any]) -> ReadModel:
    """`data` with only the fields `audience` may receive of `resource`."""
    allowed = TABLE[resource][audience]
    return ReadModel(resource, audience, {k: v for k, v in data.items() if k in allowed})


def job_audience(
    *,
    viewer_member_id: int | None,
    viewer_cluster_id: int,
    job_cluster_id: int,
    poster_member_id: int,
    parties: Collection[int],
    on_offer: bool,
) -> Audience:
    """Who the viewer is to one job (see the module's docstring)."""
    if viewer_cluster_id != job_cluster_id:
        return Audience.OTHER_CLUSTER
    if viewer_member_id is None:
        return Audience.COORDINATOR
    if viewer_member_id == poster_member_id:
        return Audience.POSTER
    if viewer_member_id in parties:
        return Audience.PARTY
    return Audience.PARTNER if on_offer else Audience.OTHER_MEMBER


def machine_audience(
    *,
    viewer_member_id: int | None,
    viewer_cluster_id: int,
    machine_cluster_id: int,
    owners: Collection[int],
) -> Audience:
    """Who the viewer is to one machine: an owner, the coordinator, another member."""
    if viewer_cluster_id != machine_cluster_id:
        return Audience.OTHER_CLUSTER
    if viewer_member_id is None:
        return Audience.COORDINATOR
    return Audience.POSTER if viewer_member_id in owners else Audience.OTHER_MEMBER


def booking_audience(machine_audience: Audience, *, viewer_member_id: int | None,
                     booker_member_id: int) -> Audience:
    """Who the viewer is to one booking (or to the slot it takes, or to a rotation period,
    whose holder is its booker), knowing who it is to the booking's machine: the booker
    (PARTY), an owner (POSTER), the coordinator, or a member outside it."""
    if machine_audience is Audience.OTHER_CLUSTER:
        return machine_audience
    if viewer_member_id is not None and viewer_member_id == booker_member_id:
        return Audience.PARTY
    return machine_audience


def bid_audience(
    job_audience: Audience,
    *,
    viewer_member_id: int | None,
    bid_parties: Collection[int],
    submitted: bool,
) -> Audience:
    """Who the viewer is to one bid, knowing who it is to the bid's job: the bid's own
    parties; the poster once the bid is submitted (a draft is the partners' business);
    everyone else reads it as a member outside it (nothing), the coordinator and another
    cluster as themselves."""
    if viewer_member_id is not None and viewer_member_id in bid_parties:
        return Audience.PARTY
    if job_audience is Audience.POSTER and submitted:
        return Audience.POSTER
    if job_audience in (Audience.COORDINATOR, Audience.OTHER_CLUSTER, Audience.PARTNER):
        return job_audience
    return Audience.OTHER_MEMBER
