"""Whose figures a viewer may see on the dashboard: the one place that decides.

The coordinator runs the cluster: it sees the cluster's totals and every
member's figures.  A member's people (owners and crew) see the cluster's
totals and their own business's figures, never another member's revenue,
fees or ratings (DESIGN rule 5): asking for another member of the cluster is
refused, and an id from another cluster looks exactly like one that does not
exist.  Every page and CSV of the dashboard gets its scope from here.

A member's view of the cluster's totals is *pooled*: its sums of other
members' money and ratings go through `disclosure` (closed months only, as
stored on their first read; none or at least k amounts only their parties
know, from at least k other members; k from the agreement in force).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from marketplace.clusters.agreements import DEFAULT_MIN_GROUP, aggregate_min_group
from marketplace.clusters.models import Cluster, Member, User
from marketplace.clusters.service import acting_member, get_cluster, get_member, list_members
from marketplace.db import parse_id
from marketplace.errors import N_, Forbidden, ValidationError

#: The member filter's value for the cluster's totals.
CLUSTER = "cluster"


@dataclass(frozen=True)
class Scope:
    """The cluster, the member whose figures are shown (None: the cluster's totals),
    and the members the viewer may choose from; for a member's people, their own
    member (`viewer_member_id`) and the agreement's k (`min_group`)."""

    cluster: Cluster
    member: Member | None
    choices: tuple[Member, ...]
    sees_every_member: bool
    viewer_member_id: int | None = None
    min_group: int = DEFAULT_MIN_GROUP

    @property
    def pooled(self) -> bool:
        """A member looking at the cluster's totals: other members' money and ratings
        are shown only as pools that cannot be taken apart (`disclosure`)."""
        return not self.sees_every_member and self.member is None

    @property
    def cluster_id(self) -> int:
        assert self.cluster.id is not None
        return self.cluster.id

    @property
    def member_id(self) -> int | None:
        return self.member.id if self.member is not None else None


def _member_id(text: str) -> int:
    member_id = parse_id(text)
    if member_id is None:
        message = N_("Choose the whole cluster or a member from the list.")
        raise ValidationError("invalid_member", message, fields={"member": message})
    return member_id


def scope_for(session: Session, viewer: User, member: str | None) -> Scope:
    """The scope `viewer` asked for with the member filter (`member`: None or blank for
    the default, CLUSTER for the totals, or a member id)."""
    cluster = get_cluster(session, viewer)
    wanted = (member or "").strip()
    if viewer.is_coordinator:
        chosen = None if wanted in ("", CLUSTER) else \
            get_member(session, viewer, _member_id(wanted))
        return Scope(cluster, chosen, tuple(list_members(session, viewer)), True)
    own = acting_member(session, viewer)
    if wanted == CLUSTER:
        return Scope(cluster, None, (own,), False, own.id,
                     aggregate_min_group(session, viewer.cluster_id))
    if wanted and get_member(session, viewer, _member_id(wanted)).id != own.id:
        raise Forbidden("own_figures_only", N_("You can see the cluster’s totals and your own "
                                               "business’s figures only."))
    return Scope(cluster, own, (own,), False, own.id)
