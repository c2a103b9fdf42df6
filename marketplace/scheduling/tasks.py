"""The periodic tasks.  Each takes a session and `now`, and is safe to run twice.

Domain tables are the truth, not the scheduler's job store: a sweep finds
whatever is due (a bid window whose deadline passed while the app was down
included) and the service's conditional update makes the second run a no-op.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from marketplace.clusters.exit.service import take_due_exits
from marketplace.clusters.governance.service import close_due_proposals
from marketplace.clusters.insurance.service import remind_expiring
from marketplace.clusters.review.service import close_due_reviews, open_due_reviews
from marketplace.delivery.runner import send_due_pushes
from marketplace.disputes.service import mark_overdue as mark_overdue_disputes
from marketplace.equipment.rotation import rotation_sweep
from marketplace.fanout import sweep as sweep_fanouts
from marketplace.jobs.bidding import close_due_windows, remind_closing_windows
from marketplace.jobs.service import expire_due_jobs
from marketplace.ledger.settlement import draft_due
from marketplace.ledger.sweeps import execute_installed_payouts
from marketplace.mail.runner import send_due_mails


@dataclass(frozen=True)
class PeriodicTask:
    id: str
    every_seconds: float
    run: Callable[[Session, datetime], Any]


TASKS: tuple[PeriodicTask, ...] = (
    # Fan-outs a crashed or stopped process still owed (a post's notifications).
    PeriodicTask("events.fan_out_owed", 5.0, sweep_fanouts),
    PeriodicTask("jobs.close_due_bid_windows", 2.0, close_due_windows),
    PeriodicTask("jobs.remind_closing_windows", 30.0, remind_closing_windows),
    # Jobs nobody took before their start date: closed, the poster told.  The day turns
    # at each cluster's midnight; claims and bids are refused from then on regardless.
    PeriodicTask("jobs.expire_unclaimed", 60.0, expire_due_jobs),
    # Web Push off the request path: every second, whatever became due (new rows,
    # retries whose back-off ran out, rows a crashed worker left claimed).
    PeriodicTask("delivery.send_push", 1.0, send_due_pushes),
    # E-mail the same way: invites, resets, notices and digests whose time has come.
    PeriodicTask("delivery.send_mail", 2.0, send_due_mails),
    PeriodicTask("equipment.rotation", 60.0, rotation_sweep),
    PeriodicTask("ledger.draft_settlements", 300.0, draft_due),
    PeriodicTask("ledger.execute_payouts", 30.0, execute_installed_payouts),
    # Insurance: reminders 30 and 7 days before a verified expiry, the notice at it;
    # each once per member and expiry (a unique row), however often this runs.
    PeriodicTask("clusters.insurance_reminders", 900.0, remind_expiring),
    # Votes on agreement changes: each proposal closed once at its deadline (a
    # conditional update), counted by the charter's rule, published if carried.
    PeriodicTask("clusters.close_due_proposals", 30.0, close_due_proposals),
    # Sunset reviews: each opened once (a unique key per cluster and sunset) from 30
    # days before the sunset of the version in force, in the cluster's time zone; closed
    # once (a conditional update) at the sunset, or when a renewal was published.
    PeriodicTask("clusters.open_sunset_reviews", 300.0, open_due_reviews),
    PeriodicTask("clusters.close_sunset_reviews", 60.0, close_due_reviews),
    # Disputes between members: once a dispute's deadline passes undecided, its readers
    # are told once (a conditional update) and a panel's passes to the coordinator.
    PeriodicTask("disputes.mark_overdue", 300.0, mark_overdue_disputes),
    # Exits: each member's exit (its date came, or the agreement reached its sunset with
    # no newer version) takes effect once (a unique row): bookings refunded, machines
    # bought out or withdrawn, open jobs cancelled, access cut to its statements.
    PeriodicTask("clusters.take_due_exits", 60.0, take_due_exits),
)
