"""The fixed taxonomy of trades a member business can offer.

Fixed, not free text, because eligibility for overflow jobs matches trades
exactly: "tree work" and "Tree-work" must never be two different skills.
"""

from __future__ import annotations

from marketplace.errors import N_

TRADES: dict[str, str] = {
    "mowing": N_("Mowing"),
    "hardscaping": N_("Hardscaping"),
    "irrigation": N_("Irrigation"),
    "tree_work": N_("Tree work"),
    "snow_removal": N_("Snow removal"),
    "grading": N_("Grading and excavation"),
    "planting": N_("Planting"),
    "drainage": N_("Drainage"),
    "fencing": N_("Fencing"),
    "general_contracting": N_("General contracting"),
    "paving": N_("Paving"),
    "masonry": N_("Masonry"),
}


def is_trade(code: str) -> bool:
    """True when `code` is one of the taxonomy's trade codes."""
    return code in TRADES
