"""One import that loads every domain's tables into SQLModel.metadata.

Alembic and the test fixtures need the whole schema; importing each domain's
models here keeps that list in one place.
"""

from __future__ import annotations


def import_all_models() -> None:
    """Import every module that defines tables (idempotent)."""
    import marketplace.api.models  # noqa: F401
    import marketplace.clusters.exit.models  # noqa: F401
    import marketplace.clusters.models  # noqa: F401
    import marketplace.clusters.review.models  # noqa: F401
    import marketplace.dashboard.models  # noqa: F401
    import marketplace.delivery.models  # noqa: F401
    import marketplace.disputes.models  # noqa: F401
    import marketplace.equipment.models  # noqa: F401
    import marketplace.jobs.models  # noqa: F401
    import marketplace.ledger.models  # noqa: F401
    import marketplace.realtime.models  # noqa: F401
    import marketplace.scheduling.models  # noqa: F401
