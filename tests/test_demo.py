"""The demo cluster a newcomer sees first is alive and consistent."""

from __future__ import annotations

from sqlmodel import Session

from marketplace.clusters.agreements import Activity, participation_refusal
from marketplace.clusters.models import Member
from marketplace.demo import DEMO_PASSWORD, FIRMS, demo_logins, seed_demo
from tests.conftest import NOW, SECRET


def test_seed_demo_builds_a_living_cluster_once(session: Session, client) -> None:
    assert seed_demo(session, SECRET, NOW) is True
    assert seed_demo(session, SECRET, NOW) is False
    logins = demo_logins(session)
    assert len(logins) == 1 + len(FIRMS)
    assert {u.locale for u in logins} >= {"en", "es", "fr"}
    for user in logins[1:]:
        member = session.get(Member, user.member_id)
        assert member is not None
        assert participation_refusal(session, member, Activity.OVERFLOW_JOBS, NOW) is None
    session.commit()  # end the read so the app can write (SQLite has one writer)
    response = client.post("/login", data={"email": logins[1].email, "password": DEMO_PASSWORD})
    assert response.status_code == 302
    assert "Valley Green Cooperative" in client.get("/members").get_data(as_text=True)
