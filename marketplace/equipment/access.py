"""Finding a machine the viewer may see, its owners, and who may manage it."""

from __future__ import annotations

from sqlmodel import Session, col, select

from marketplace.clusters.models import Member, Role, User
from marketplace.equipment.models import Equipment, EquipmentOwner
from marketplace.errors import N_, Forbidden
from marketplace.rows import in_cluster


def get_equipment(session: Session, viewer: User, equipment_id: int, *,
                  for_update: bool = False) -> Equipment:
    """A machine of the viewer's cluster, or NotFound (other clusters' look missing)."""
    return in_cluster(session, Equipment, equipment_id, viewer.cluster_id,
                      for_update=for_update)


def owner_shares(session: Session, equipment_id: int) -> dict[int, int]:
    """Owning member id -> ownership share in basis points."""
    return {row.member_id: row.share_bp for row in session.exec(
        select(EquipmentOwner).where(EquipmentOwner.equipment_id == equipment_id))}


def owned_machine_ids(session: Session, member_id: int | None) -> set[int]:
    """The machines `member_id` owns or co-owns (none for a coordinator)."""
    if member_id is None:
        return set()
    return set(session.exec(select(EquipmentOwner.equipment_id).where(
        EquipmentOwner.member_id == member_id)))


def owners(session: Session, equipment_id: int) -> list[Member]:
    """The owning member businesses, by name."""
    return list(session.exec(
        select(Member).join(EquipmentOwner, col(EquipmentOwner.member_id) == Member.id)
        .where(EquipmentOwner.equipment_id == equipment_id).order_by(Member.name)))


def can_manage(session: Session, user: User, equipment: Equipment) -> bool:
    """Owners (the role) of an owning business manage it; the coordinator co-owned ones."""
    if user.cluster_id != equipment.cluster_id or equipment.id is None:
        return False
    shares = owner_shares(session, equipment.id)
    if user.role == Role.COORDINATOR:
        return len(shares) > 1
    return user.role == Role.OWNER and user.member_id in shares


def require_manager(session: Session, user: User, equipment: Equipment) -> None:
    """Refuse anyone who may not change the listing."""
    if not can_manage(session, user, equipment):
        raise Forbidden("not_equipment_manager",
                        N_("Only an owner of this machine can change its listing."))
