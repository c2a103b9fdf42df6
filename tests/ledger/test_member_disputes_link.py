"""Disputes between members are found where money is: the Money page (a member) and the
settlements page (the coordinator) link to the list, which opens."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.conftest import World, login


def test_the_money_pages_lead_to_the_disputes(client: FlaskClient, world: World) -> None:
    for user in (world.owner_a, world.crew_a, world.coordinator):
        login(client, user)
        page = client.get("/ledger").get_data(as_text=True)
        assert 'id="member-disputes"' in page and 'href="/disputes/"' in page, user.email
        assert client.get("/disputes/").status_code == 200
