"""Journey 5 on a phone: the coordinator settles a month and downloads the statements.

June 2026 is a busy month written through the real services (a hand-off, a
joint bid, shared-trailer bookings, a late cancellation, a damage fee).  The
coordinator opens Money, drafts June, adds an adjustment, approves with bank
references, then downloads every member's statement CSV and opens the
printable page.  Each CSV must match the ledger to the cent.
"""

from __future__ import annotations

from decimal import Decimal

from flask import Flask
from playwright.sync_api import expect
from sqlmodel import Session

from marketplace.ledger import settlement
from marketplace.ledger.views import signed_amount
from marketplace.money import format_money
from tests.browser.conftest import Phones
from tests.browser.steps import (
    add_adjustment,
    approve_month,
    download_statement,
    draft_month,
    open_month,
    submit,
)
from tests.ledger.conftest import (  # noqa: F401 - fixtures that build the month's world
    JUNE,
    Ledger,
    busy_month,
    co_owned,
    eq,
    jobs_world,
    lw,
)
from tests.live import live_server


def _minor(text: str) -> int:
    """A CSV amount ("-617.28") in cents."""
    return int(Decimal(text) * 100)


def test_coordinator_settles_the_month_and_downloads_statements_that_match_the_ledger(
        app: Flask, session: Session, lw: Ledger, phones: Phones) -> None:  # noqa: F811
    busy_month(session, lw)
    session.commit()
    cluster_id = lw.world.cluster.id
    assert cluster_id is not None
    members = {"Alpha Lawns": lw.a, "Beta Stone": lw.b, "Gamma Trees": lw.c,
               "Delta Decks": lw.d}
    with live_server(app) as base:
        page = phones.log_in(base, lw.coordinator.email)
        open_month(page, JUNE)
        expect(page.locator("main")).to_contain_text("Not drafted yet")
        draft_month(page, JUNE)
        expect(page.get_by_role("status")).to_contain_text("Settlement drafted.")
        phones.shot(page, "1-drafted")
        credit = page.locator("input[name=direction][value=credit]")
        box = credit.bounding_box()  # a round button beside its label, not a stretched bar
        assert box is not None and box["width"] < 2 * box["height"], box
        add_adjustment(page, JUNE, lw.b, "25.00", "Fuel reimbursement")
        expect(page.get_by_role("status")).to_contain_text("Adjustment recorded.")

        session.expire_all()
        nets = settlement.month_nets(session, cluster_id, JUNE)
        session.commit()
        assert sum(n.net for n in nets.values()) == 0
        lang = page.evaluate("document.documentElement.lang").replace("-", "_")

        def shown(minor: int) -> str:
            return format_money(minor, "CAD", lang)

        for name, member_id in members.items():
            row = page.locator("#nets tr", has_text=name)
            expect(row.locator("td.num").nth(2)).to_have_text(shown(nets[member_id].net))
        expect(page.locator("#conservation")).to_contain_text(shown(0))
        phones.shot(page, "2-review")
        approve_month(page, JUNE, {m: f"BANK-{m}" for m in members.values()})
        expect(page.get_by_role("status")).to_contain_text("Month approved and locked.")
        expect(page.locator("main .badge.ok")).to_have_text("Approved")
        expect(page.locator(f"form[action$='/ledger/{JUNE}/approve']")).to_have_count(0)
        phones.shot(page, "3-approved")

        statements: dict[str, list[list[str]]] = {}
        for name, member_id in members.items():
            submit(page, page.locator("#nets a", has_text=name))
            expect(page.locator("#net")).to_have_text(shown(nets[member_id].net))
            expect(page.locator("#transfer")).to_contain_text(f"BANK-{member_id}")
            rows = statements[name] = download_statement(page, phones.folder)
            entries = settlement.statement(session, cluster_id, member_id, JUNE)
            session.commit()
            lines, net_row = rows[1:-2], rows[-1]
            assert rows[-2] == [] and net_row[0] == "Net for the month"
            assert [_minor(line[4]) for line in lines] == [
                signed_amount(e, member_id) for e in entries], name
            assert sum(_minor(line[4]) for line in lines) == _minor(net_row[4]) \
                == nets[member_id].net, name
            page.go_back()
        assert ["Adjustment by the coordinator", "the cluster", "Fuel reimbursement", "25.00"] \
            == statements["Beta Stone"][-3][1:]

        submit(page, page.locator("#nets a", has_text="Beta Stone"))
        submit(page, page.locator("a[href*='/print']"))
        expect(page.locator("h1")).to_contain_text("Statement June 2026")
        expect(page.locator("header")).to_contain_text("Approved on")
        expect(page.locator("#net")).to_have_text(shown(nets[lw.b].net))
        expect(page.locator("#statement tbody tr")).to_have_count(len(statements["Beta Stone"]) - 3)
        phones.shot(page, "4-printable")
