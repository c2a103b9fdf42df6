"""Invite links: signed, expiring, single-use; refusals create nothing."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from marketplace.clusters import invites
from marketplace.clusters.models import Member, User
from marketplace.db import utcnow
from marketplace.errors import Conflict, Gone, ValidationError
from tests.conftest import NOW, PASSWORD, SECRET, World


def _counts(session: Session) -> tuple[int, int]:
    users = session.exec(select(func.count()).select_from(User)).one()
    members = session.exec(select(func.count()).select_from(Member)).one()
    return users, members


def _new_invite(session: Session, world: World, when: datetime = NOW
                ) -> tuple[invites.Invite, str]:
    invite = invites.create_member_invite(session, world.coordinator, "new@gamma.test",
                                          "Gamma Trees", when, 7)
    return invite, invites.invite_token(SECRET, invite)


def test_accepting_creates_member_business_and_owner(session: Session, world: World) -> None:
    _invite, token = _new_invite(session, world)
    user = invites.accept_invite(session, SECRET, token, "Gina", PASSWORD, NOW)
    assert user.role == "owner" and user.cluster_id == world.cluster.id
    member = session.get(Member, user.member_id)
    assert member is not None and member.name == "Gamma Trees"


@pytest.mark.parametrize("case", ["expired", "reused", "tampered", "foreign_key"])
def test_bad_invite_is_refused_and_creates_nothing(session: Session, world: World,
                                                   case: str) -> None:
    _invite, token = _new_invite(session, world)
    when = NOW
    if case == "expired":
        when = NOW + timedelta(days=7, seconds=1)
    elif case == "reused":
        invites.accept_invite(session, SECRET, token, "Gina", PASSWORD, NOW)
    elif case == "tampered":
        token = token[:-3] + ("abc" if token[-3:] != "abc" else "xyz")
    before = _counts(session)
    secret = "someone-else" if case == "foreign_key" else SECRET
    with pytest.raises(Gone) as refused:
        invites.accept_invite(session, secret, token, "Mallory", PASSWORD, when)
    assert refused.value.code in {"invite_expired", "invite_used", "invite_invalid"}
    assert _counts(session) == before


def test_weak_password_refused_and_invite_still_usable(session: Session, world: World) -> None:
    _invite, token = _new_invite(session, world)
    before = _counts(session)
    with pytest.raises(ValidationError) as refused:
        invites.accept_invite(session, SECRET, token, "Gina", "short", NOW)
    assert "password" in refused.value.fields
    assert _counts(session) == before
    assert invites.accept_invite(session, SECRET, token, "Gina", PASSWORD, NOW).id


def test_only_coordinator_invites_businesses(session: Session, world: World) -> None:
    from marketplace.errors import Forbidden

    with pytest.raises(Forbidden):
        invites.create_member_invite(session, world.owner_a, "x@x.test", "X", NOW, 7)


def test_concurrent_acceptance_creates_exactly_one_account(app, world: World) -> None:
    with Session(app.extensions["engine"], expire_on_commit=False) as s:
        _invite, token = _new_invite(s, world)
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def accept(n: int) -> None:
        with Session(app.extensions["engine"], expire_on_commit=False) as s:
            barrier.wait()
            try:
                invites.accept_invite(s, SECRET, token, f"Racer {n}", PASSWORD, NOW)
                outcomes.append("won")
            except (Conflict, Gone, ValidationError):
                outcomes.append("refused")

    threads = [threading.Thread(target=accept, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("won") == 1
    with Session(app.extensions["engine"]) as s:
        assert len(s.exec(select(User).where(User.email == "new@gamma.test")).all()) == 1


def test_signup_page_through_invite_link(client, session: Session, world: World) -> None:
    _invite, token = _new_invite(session, world, utcnow())
    page = client.get(f"/invite/{token}")
    assert page.status_code == 200 and "Gamma Trees" in page.get_data(as_text=True)
    done = client.post(f"/invite/{token}", data={"name": "Gina", "password": PASSWORD})
    assert done.status_code == 302 and done.headers["Location"].endswith("/agreement")
    again = client.get(f"/invite/{token}")
    assert again.status_code == 410
    assert "already been used" in again.get_data(as_text=True)


def test_tampered_link_page_says_what_to_do(client, world: World) -> None:
    page = client.get("/invite/not-a-real-token")
    assert page.status_code == 404
    assert "ask your coordinator for a new one" in page.get_data(as_text=True)
