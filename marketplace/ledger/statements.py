"""A member's statement of a month as words and rows, in the reader's language.

The statement page, its CSV download and the statement mailed with an approved
month (mail/composer.py) all say the same thing: one place builds the labels,
notes, signs and rows, so the mailed CSV can never disagree with the page.
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlmodel import Session

from marketplace.clusters.models import Member, User
from marketplace.clusters.service import get_cluster, list_members
from marketplace.errors import N_
from marketplace.i18n import month_name, when
from marketplace.ledger import settlement
from marketplace.ledger.models import EntrySource, LedgerEntry
from marketplace.money import plain_decimal
from marketplace.persisted import id_of
from marketplace.spreadsheet import spreadsheet_text

SOURCE_LABELS = {
    EntrySource.BOOKING: N_("Equipment booking"),
    EntrySource.BOOKING_REFUND: N_("Booking refund"),
    EntrySource.CANCELLATION_FEE: N_("Late cancellation fee"),
    EntrySource.DAMAGE_FEE: N_("Damage fee"),
    EntrySource.JOB_SHARE: N_("Share of a joint job"),
    EntrySource.REFERRAL_FEE: N_("Referral fee"),
    EntrySource.PLATFORM_FEE: N_("Cluster fee"),
    EntrySource.ADJUSTMENT: N_("Adjustment by the coordinator"),
    EntrySource.PAYOUT: N_("Card payment share transferred"),
    EntrySource.JOB_REFUND: N_("Customer refund"),
    EntrySource.REVERSAL: N_("Refunded share taken back"),
    EntrySource.DISPUTE_HOLD: N_("Held for a card dispute"),
    EntrySource.DISPUTE_RELEASE: N_("Card dispute won: hold released"),
    EntrySource.BUYOUT: N_("Machine share bought out at exit"),
    EntrySource.BOOKING_HANDOVER: N_("Booking fee passed on at exit"),
    EntrySource.BOOKING_HANDOVER_REFUND: N_("Booking fee passed on at exit, returned"),
    EntrySource.MEMBER_DISPUTE_HOLD: N_("Held while a dispute is open"),
    EntrySource.MEMBER_DISPUTE_SETTLED: N_("Settled by a dispute's decision"),
}


def entry_note(entry: LedgerEntry) -> str:
    """The statement line's note: its memo, and why it is in this month if it is late."""
    if not entry.late_from:
        return entry.memo
    late = _("Belongs to %(month)s, which was already settled.",
             month=month_name(entry.late_from))
    return f"{entry.memo} · {late}" if entry.memo else late


def signed_amount(entry: LedgerEntry, member_id: int) -> int:
    """Positive when the member receives the entry's amount, negative when it pays."""
    return entry.amount_minor if entry.payee_member_id == member_id else -entry.amount_minor


def statement_rows(session: Session, user: User, member: Member, month: str
                   ) -> list[list[str]]:
    """The member's statement of the month as spreadsheet rows, in the current language:
    the CSV download and the statement mailed with an approved month are these rows."""
    cluster = get_cluster(session, user)
    names: dict[int | None, str] = {m.id: m.name for m in list_members(session, user)}
    names[None] = _("the cluster")
    rows: list[list[str]] = [[_("Date"), _("What"), _("With"), _("Note"),
                              _("Amount (%(currency)s)", currency=cluster.currency)]]
    for entry in settlement.statement(session, id_of(cluster), id_of(member), month):
        other = entry.payer_member_id if entry.payee_member_id == member.id \
            else entry.payee_member_id
        amount = signed_amount(entry, id_of(member))
        rows.append([when(entry.created_at, "short"), _(SOURCE_LABELS[EntrySource(entry.source)]),
                     spreadsheet_text(names.get(other, "")), spreadsheet_text(entry_note(entry)),
                     plain_decimal(amount, cluster.currency)])
    net = settlement.month_nets(session, id_of(cluster), month).get(member.id)
    rows.append([])
    rows.append([_("Net for the month"), "", "", "",
                 plain_decimal(net.net if net else 0, cluster.currency)])
    return rows
