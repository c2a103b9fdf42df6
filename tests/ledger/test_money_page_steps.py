"""The coordinator's money page offers only the next valid settlement step, and names
months as people say them ("June 2026", "juin 2026"), never "2026-06"."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session

from marketplace.clusters.service import update_preferences
from marketplace.ledger import settlement
from marketplace.ledger import views as ledger_views
from marketplace.ledger.models import Settlement, SettlementStatus
from tests.conftest import login
from tests.ledger.conftest import JULY_2, JUNE, Ledger, busy_month


@pytest.fixture(autouse=True)
def _second_of_july(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_views, "utcnow", lambda: JULY_2)


def _step(client: FlaskClient) -> str:
    page = client.get("/ledger").get_data(as_text=True)
    start = page.index('id="next-step"')
    return page[start:page.index("</", start)]


def test_the_page_offers_draft_then_approve_then_nothing(client: FlaskClient,
                                                        session: Session, lw: Ledger) -> None:
    busy_month(session, lw)
    login(client, lw.coordinator)
    assert "Draft the settlement for June 2026" in _step(client)
    settlement.draft_for(session, lw.coordinator, JUNE, JULY_2)
    offered = client.get("/ledger").get_data(as_text=True)
    assert "Draft the settlement for" not in offered  # June is a draft already
    assert "Review and approve June 2026" in _step(client)
    settlement.approve(session, lw.coordinator, JUNE, {}, JULY_2)
    assert "Every finished month is settled." in _step(client)


def test_months_read_by_name_in_the_readers_language(client: FlaskClient, session: Session,
                                                     lw: Ledger) -> None:
    busy_month(session, lw)
    update_preferences(session, lw.coordinator, "fr", None, None)
    login(client, lw.coordinator)
    index = client.get("/ledger").get_data(as_text=True)
    assert "juin 2026</a>" in index and ">2026-06<" not in index
    assert "juin 2026" in client.get(f"/ledger/{JUNE}").get_data(as_text=True)


@pytest.mark.parametrize(("rows", "step"), [
    ([], None),
    ([("2026-07", None)], None),  # the running month is never settled
    ([("2026-06", None), ("2026-05", None)], ("draft", "2026-05")),  # oldest first
    ([("2026-06", None), ("2026-05", "approved")], ("draft", "2026-06")),
    ([("2026-06", None), ("2026-05", "draft")], ("approve", "2026-05")),
    ([("2026-06", "approved")], None),
])
def test_next_step_rule(rows: list[tuple[str, str | None]], step: tuple[str, str] | None
                        ) -> None:
    found = [(m, Settlement(cluster_id=1, month=m, status=SettlementStatus(s)) if s else None)
             for m, s in rows]
    assert ledger_views.next_settlement_step(found, "2026-07") == step
