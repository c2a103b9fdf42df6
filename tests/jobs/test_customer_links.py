"""After award the winner reaches the customer in one tap: the address opens the map,
the e-mail the mail app, the phone the dialler (templates/jobs/detail.html)."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient
from sqlmodel import Session

from marketplace.db import utcnow
from marketplace.jobs.service import claim_job, post_job
from tests.conftest import World, login
from tests.jobs.conftest import give_profile, job_draft


def test_the_winner_gets_map_mail_and_phone_links(client: FlaskClient, session: Session,
                                                  world: World) -> None:
    give_profile(session, world.owner_a)
    give_profile(session, world.owner_b)
    now = utcnow()
    start = now.date() + timedelta(days=7)
    job = post_job(session, world.owner_a, job_draft(starts_on=start, ends_on=start), now)
    claim_job(session, world.owner_b, job.id, now)  # type: ignore[arg-type]
    session.commit()
    login(client, world.owner_b)
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert 'href="https://www.google.com/maps/search/?api=1&amp;query=' in page
    assert 'href="mailto:zelda.q@customer.example"' in page
    assert 'href="tel:+14165550199">+1-416-555-0199</a>' in page
