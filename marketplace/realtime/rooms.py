"""Room names.  Events go to the narrowest room that reaches the right people,
never to a whole cluster: a rival must not even learn that something happened.
"""

from __future__ import annotations


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


def member_room(member_id: int) -> str:
    return f"member:{member_id}"


def coordinators_room(cluster_id: int) -> str:
    return f"cluster:{cluster_id}:coordinators"


def rooms_for(user_id: int, member_id: int | None, cluster_id: int, is_coordinator: bool
              ) -> list[str]:
    """Every room a connected person belongs in, and no other."""
    rooms = [user_room(user_id)]
    if member_id is not None:
        rooms.append(member_room(member_id))
    if is_coordinator:
        rooms.append(coordinators_room(cluster_id))
    return rooms
