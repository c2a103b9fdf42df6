"""What members were shown of a closed month: the cluster totals, stored once.

A member's pooled view of the cluster (`disclosure`) serves a month that is
over from here, never from the rows again: the first read of the month
computes each figure and stores it, every later read gets the stored one, so
nothing that happens afterwards -- a fact filed late, a new time zone, another
range -- can change a number a member has seen (issue #16).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from marketplace.db import UTCDateTime


class ClusterSnapshot(SQLModel, table=True):
    """One figure of one closed month of one cluster, as computed on its first read.

    `total` is the sum (of minor units, scores or on-time answers) over `count`
    items -- contracts, jobs, bookings, ledger facts or ratings; `hidden` lists
    the items only their parties know, each as [its members whose figure it is,
    every member taking part], so the rule can still be applied per viewer and
    per k without the rows.  No amounts of single items are kept.
    """

    __table_args__ = (UniqueConstraint("cluster_id", "month", "figure",
                                       name="uq_clustersnapshot_cell"),)

    id: int | None = Field(default=None, primary_key=True)
    cluster_id: int = Field(foreign_key="cluster.id")
    month: str = Field(max_length=7)  # YYYY-MM
    figure: str = Field(max_length=20)  # disclosure.FIGURES
    total: int = Field(sa_column=Column(BigInteger(), nullable=False))
    count: int
    hidden: list[list[list[int]]] = Field(sa_column=Column(JSON(), nullable=False))
    #: The cluster's time zone the month was read in (for the record)
    timezone: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
