"""What a viewer may see of a machine, its owners, a booking and a machine's week.

Each builder assembles the whole resource and passes it through `barrier.cut` for the
viewer's audience (`barrier.machine_audience`, `barrier.booking_audience`), so the
page JSON, the API and the templates all receive the same cut shape, and a field
added here that `barrier.TABLE` does not list for an audience never reaches it.
No flask here: views and the API call these with plain facts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from marketplace.barrier import (
    BOOKING,
    BOOKING_WHOLE,
    MACHINE,
    MACHINE_LISTING,
    MACHINE_OWNER,
    SLOT,
    Audience,
    ReadModel,
    booking_audience,
    cut,
    machine_audience,
)
from marketplace.clusters.models import User
from marketplace.equipment.calendar import Day, Segment
from marketplace.equipment.models import Booking, Equipment


@dataclass(frozen=True)
class MachineViewer:
    """The facts about a viewer the equipment audiences depend on."""

    member_id: int | None
    cluster_id: int

    @classmethod
    def of(cls, user: User) -> MachineViewer:
        return cls(user.member_id, user.cluster_id)


def audience_to_machine(viewer: MachineViewer, machine: Equipment,
                        owners: Iterable[int]) -> Audience:
    """Who the viewer is to `machine`, whose owning members are `owners`."""
    return machine_audience(viewer_member_id=viewer.member_id,
                            viewer_cluster_id=viewer.cluster_id,
                            machine_cluster_id=machine.cluster_id, owners=set(owners))


def audiences_to_machines(viewer: MachineViewer, owned: set[int]
                          ) -> Callable[[Equipment], Audience]:
    """Who the viewer is to each machine of a list, knowing the ids of the machines its
    business owns (loaded once for the list, not per card)."""
    def audience(machine: Equipment) -> Audience:
        mine = {viewer.member_id} if viewer.member_id is not None and machine.id in owned \
            else set()
        return audience_to_machine(viewer, machine, mine)
    return audience


def machine_model(machine: Equipment, audience: Audience) -> ReadModel:
    """The listing as `audience` may see it."""
    return cut(MACHINE, audience, {name: getattr(machine, name) for name in MACHINE_LISTING})


def owner_models(shares: Mapping[int, int], audience: Audience) -> list[ReadModel]:
    """The machine's owners (member id -> share in basis points), by member id."""
    return [cut(MACHINE_OWNER, audience, {"member_id": member_id, "share_bp": share})
            for member_id, share in sorted(shares.items())]


def booking_model(booking: Booking, audience: Audience) -> ReadModel:
    """The booking as `audience` may see it (relative to the booking, not the machine)."""
    return cut(BOOKING, audience, {name: getattr(booking, name) for name in BOOKING_WHOLE})


def booking_for(viewer: MachineViewer, booking: Booking, machine: Equipment,
                owners: Iterable[int]) -> ReadModel:
    """`booking` cut for `viewer`, knowing its machine and the machine's owners."""
    on_machine = audience_to_machine(viewer, machine, owners)
    return booking_model(booking, booking_audience(
        on_machine, viewer_member_id=viewer.member_id, booker_member_id=booking.member_id))


def slot_model(segment: Segment) -> ReadModel:
    """A piece of a machine's week for the viewer it was labelled for."""
    return cut(SLOT, segment.audience, segment.fields())


def machine_detail(machine: Equipment, owners: list[ReadModel], hours: Iterable[Any],
                   days: Iterable[Day], audience: Audience) -> dict[str, Any]:
    """The machine page's resource (the API's `MachineDetail`): the listing, its owners
    (already cut), its weekly hours and a week of slots."""
    return {"machine": machine_model(machine, audience), "owners": owners,
            "hours": [{"weekday": h.weekday, "start_minute": h.start_minute,
                       "end_minute": h.end_minute} for h in hours],
            "week": [{"day": d.day, "segments": [slot_model(s) for s in d.segments]}
                     for d in days]}
