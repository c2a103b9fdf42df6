"""Equipment pages, one module per idea, all on the one `equipment` blueprint (so every
endpoint keeps its name, `equipment.detail` and the rest) plus the login-free `.ics`
feed's: machines and their listing form, bookings, rotation of co-owned machines, the
calendar feed.

Importing this package registers every route on `bp` and `feed_bp`; `create_app`
registers the two blueprints.
"""

from __future__ import annotations

from marketplace.equipment.views import (  # noqa: F401 - each registers its routes
    bookings,
    feed,
    listing_form,
    machines,
    rotation,
)
from marketplace.equipment.views.common import bp, feed_bp

__all__ = ["bp", "feed_bp"]
