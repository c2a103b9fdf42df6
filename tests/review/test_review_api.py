"""The sunset review through the API: the same read model as the pages (a rival member's
choice hidden, its lessons shared), an answer changed in place, a renewal only when
carried, and nothing of ours for another cluster."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlmodel import Session, select

from marketplace.clusters.review.models import ReviewAnswer
from tests.api.conftest import bearer
from tests.conftest import World
from tests.review.test_review_pages import TARGETS, open_review


def test_owners_answer_and_read_the_review_through_the_api(
        client: FlaskClient, session: Session, world: World) -> None:
    found = open_review(session, world)
    a, b = bearer(session, world.owner_a), bearer(session, world.owner_b)
    url = f"/api/v1/agreement/reviews/{found.id}"
    sent = client.post(f"{url}/answer", json={"choice": "leave", "lessons": "Too quiet."},
                       headers=a)
    assert sent.status_code == 200, sent.get_json()
    assert sent.get_json()["my_choice"] == "leave"
    changed = client.post(f"{url}/answer", json={"choice": "renew", "lessons": "Worth it."},
                          headers=a)
    assert changed.get_json()["answers"][0]["choice"] == "renew"
    bad = client.post(f"{url}/answer", json={"choice": "stay"}, headers=a)
    assert bad.status_code == 422
    seen = client.get(url, headers=b).get_json()
    assert seen["answers"] == [{**seen["answers"][0], "choice": None, "lessons": "Worth it."}]
    assert seen["tally"] is None and seen["may_answer"] is True
    assert {t["code"]: t["goal"] for t in seen["targets"]} == TARGETS
    assert all(len(t["quarters"]) >= 1 for t in seen["targets"])
    listed = client.get("/api/v1/agreement/reviews", headers=b).get_json()
    assert [r["id"] for r in listed["reviews"]] == [found.id]
    session.rollback()
    assert len(session.exec(select(ReviewAnswer)).all()) == 1


def test_the_coordinator_renews_through_the_api_once_carried(
        client: FlaskClient, session: Session, world: World) -> None:
    found = open_review(session, world)
    coordinator = bearer(session, world.coordinator)
    url = f"/api/v1/agreement/reviews/{found.id}"
    refused = client.post(f"{url}/renew", json={"sunset_on": "2031-01-01"},
                          headers=coordinator)
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "renewal_not_carried"
    for owner in (world.owner_a, world.owner_b):
        client.post(f"{url}/answer", json={"choice": "renew"}, headers=bearer(session, owner))
    member = client.post(f"{url}/renew", json={"sunset_on": "2031-01-01"},
                         headers=bearer(session, world.owner_a))
    assert member.status_code == 403
    done = client.post(f"{url}/renew", json={"sunset_on": "2031-01-01"}, headers=coordinator)
    assert done.status_code == 200, done.get_json()
    body = done.get_json()
    assert (body["status"], body["outcome"], body["renewed_sunset_on"]) == (
        "closed", "renewed", "2031-01-01")
    assert body["tally"] == {"renew": 2, "change": 0, "leave": 0}


def test_a_rival_gets_nothing_of_our_review(client: FlaskClient, session: Session,
                                            world: World) -> None:
    found = open_review(session, world)
    rival = bearer(session, world.other_owner)
    assert client.get(f"/api/v1/agreement/reviews/{found.id}", headers=rival).status_code \
        == 404
    assert client.get("/api/v1/agreement/reviews", headers=rival).get_json() == {"reviews": []}
    assert client.post(f"/api/v1/agreement/reviews/{found.id}/answer",
                       json={"choice": "renew"}, headers=rival).status_code == 404
