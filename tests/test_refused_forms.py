"""One refused-form path (`web.submit`), proved on real routes.

A refusal the viewer corrects on the form (422) shows the form again with the message
next to its field and writes nothing.  Any other refusal during a form post (403, 409)
is the error page, never the form again, as if another try could help; a JSON client
gets the JSON error for both.
"""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlmodel import Session, select

from marketplace.db import utcnow
from marketplace.equipment import listings
from marketplace.equipment.models import Booking
from marketplace.jobs import service
from marketplace.jobs.models import JobStatus, OverflowJob
from marketplace.realtime.models import Notification
from tests.conftest import NOW, World, login
from tests.equipment.conftest import anytime_draft
from tests.jobs.conftest import give_profile, job_draft

JSON = {"Accept": "application/json"}
CANCEL_FORM = 'name="reason"'  # the job page's cancel form; the error page has none
NOT_ALLOWED = "Only the member who posted the job can cancel it."


def _job(session: Session, world: World) -> OverflowJob:
    give_profile(session, world.owner_a)
    give_profile(session, world.owner_b)
    return service.post_job(session, world.owner_a, job_draft(), NOW)


def _unchanged(session: Session, job: OverflowJob, status: JobStatus) -> None:
    session.expire_all()
    stored = session.get(OverflowJob, job.id)
    assert stored is not None and stored.status == status
    assert session.exec(select(Notification).where(
        Notification.kind == "job.cancelled")).all() == []


def test_a_correctable_refusal_shows_the_form_again_and_writes_nothing(
        client: FlaskClient, session: Session, world: World) -> None:
    job = _job(session, world)
    login(client, world.owner_a)
    refused = client.post(f"/jobs/{job.id}/cancel", data={"reason": "   "})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert CANCEL_FORM in page and "Say why the job is cancelled." in page
    assert job.title in page  # the job's own page, not the error page
    _unchanged(session, job, JobStatus.OPEN)


def test_a_refusal_of_who_asks_is_the_error_page_not_the_form(
        client: FlaskClient, session: Session, world: World) -> None:
    job = _job(session, world)
    login(client, world.owner_b)  # a member, but not the poster: 403
    refused = client.post(f"/jobs/{job.id}/cancel", data={"reason": "Not mine to cancel"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 403
    assert NOT_ALLOWED in page and CANCEL_FORM not in page
    _unchanged(session, job, JobStatus.OPEN)


def test_a_conflict_is_the_error_page_not_the_form(client: FlaskClient, session: Session,
                                                   world: World) -> None:
    job = _job(session, world)
    service.cancel_job(session, world.owner_a, job.id, "Customer moved", NOW)
    before = len(session.exec(select(Notification)).all())
    login(client, world.owner_a)
    refused = client.post(f"/jobs/{job.id}/cancel", data={"reason": "Twice"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 409
    assert "this one is already awarded or closed" in page and CANCEL_FORM not in page
    session.expire_all()
    assert len(session.exec(select(Notification)).all()) == before


def test_a_json_client_gets_the_json_error_for_any_refusal(
        client: FlaskClient, session: Session, world: World) -> None:
    job = _job(session, world)
    login(client, world.owner_a)
    invalid = client.post(f"/jobs/{job.id}/cancel", data={"reason": ""}, headers=JSON)
    assert invalid.status_code == 422
    assert invalid.get_json()["error"]["code"] == "reason_required"
    assert invalid.get_json()["error"]["fields"] == {"reason": "Say why the job is cancelled."}
    login(client, world.owner_b)
    forbidden = client.post(f"/jobs/{job.id}/cancel", data={"reason": "x"}, headers=JSON)
    assert forbidden.status_code == 403
    assert forbidden.get_json()["error"] == {"code": "poster_only", "message": NOT_ALLOWED,
                                             "fields": {}}
    _unchanged(session, job, JobStatus.OPEN)


def test_a_booking_refused_for_who_asks_is_the_error_page(client: FlaskClient,
                                                          session: Session,
                                                          world: World) -> None:
    """The booking form shows a taken slot on the machine's week (409); a coordinator,
    who books for no business, gets the error page instead of the week again."""
    machine = listings.list_machine(session, world.owner_a, anytime_draft(), utcnow())
    login(client, world.coordinator)
    refused = client.post(f"/equipment/{machine.id}/book", data={
        "starts_at": "2030-01-08T09:00", "ends_at": "2030-01-08T11:00"})
    assert refused.status_code == 403
    assert 'name="starts_at"' not in refused.get_data(as_text=True)
    session.expire_all()
    assert session.exec(select(Booking)).all() == []


def test_an_agreed_value_refused_is_shown_on_the_machine_page(
        client: FlaskClient, session: Session, world: World) -> None:
    """A co-owned machine's agreed value (clusters/exit/): a figure that is not an amount
    comes back next to the field on the machine's page; a member that is no owner gets
    the error page; a JSON client the JSON error; nothing is written."""
    from marketplace.clusters.exit import service as exits
    from marketplace.equipment.models import Equipment
    from tests.equipment.conftest import co_draft

    trailer = listings.record_co_owned(session, world.coordinator, co_draft(),
                                       {world.member_a_id: 5_000, world.member_b_id: 5_000},
                                       NOW)
    exits.set_agreed_value(session, world.owner_a, trailer.id, 900_00)  # type: ignore[arg-type]
    login(client, world.owner_a)
    for typed, message in (("nine hundred", "Enter an amount such as"),
                           ("-5", "above zero"), ("0", "above zero"),
                           ("99999999999999", "above zero")):
        refused = client.post(f"/equipment/{trailer.id}/agreed-value",
                              data={"agreed_value": typed})
        page = refused.get_data(as_text=True)
        assert refused.status_code == 422, typed
        assert message in page and 'id="agreed_value-err"' in page and typed in page
    as_json = client.post(f"/equipment/{trailer.id}/agreed-value",
                          data={"agreed_value": "x"}, headers=JSON)
    assert as_json.status_code == 422
    assert as_json.get_json()["error"]["fields"].keys() == {"agreed_value"}
    login(client, world.crew_a)
    forbidden = client.post(f"/equipment/{trailer.id}/agreed-value",
                            data={"agreed_value": "1"})
    assert forbidden.status_code == 403 and 'name="agreed_value"' not in \
        forbidden.get_data(as_text=True)
    session.expire_all()
    stored = session.get(Equipment, trailer.id)
    assert stored is not None and stored.agreed_value_minor == 900_00


def test_a_sunset_review_answer_and_renewal_refused_on_the_form_or_the_error_page(
        client: FlaskClient, session: Session, world: World) -> None:
    """The review's forms (#20 part 4): a wrong choice, an over-long lesson or a sunset
    not later than the current one is the form again with the field's message; a crew
    member's answer and an owner's renewal are the error page; nothing is written."""
    from marketplace.clusters.review.models import ReviewAnswer
    from tests.review.test_review_pages import open_review

    found = open_review(session, world)
    login(client, world.owner_a)
    for data, message in (({"choice": "stay"}, 'name="choice"'),
                          ({"choice": "renew", "lessons": "x" * 4001}, "4000")):
        refused = client.post(f"/agreement/reviews/{found.id}/answer", data=data)
        assert refused.status_code == 422 and message in refused.get_data(as_text=True)
    forbidden = client.post(f"/agreement/reviews/{found.id}/renew",
                            data={"sunset_on": "2031-01-01"})
    assert forbidden.status_code == 403
    assert 'name="sunset_on"' not in forbidden.get_data(as_text=True)
    login(client, world.crew_a)
    crew = client.post(f"/agreement/reviews/{found.id}/answer", data={"choice": "renew"})
    assert crew.status_code == 403 and 'name="lessons"' not in crew.get_data(as_text=True)
    as_json = client.post(f"/agreement/reviews/{found.id}/answer",
                          data={"choice": "renew"}, headers=JSON)
    assert as_json.status_code == 403 and as_json.get_json()["error"]["code"] == "owner_only"
    login(client, world.coordinator)
    early = client.post(f"/agreement/reviews/{found.id}/renew",
                        data={"sunset_on": found.sunset_on.isoformat()})
    assert early.status_code == 422 and 'id="sunset_on-err"' in early.get_data(as_text=True)
    session.rollback()
    assert session.exec(select(ReviewAnswer)).first() is None
    session.refresh(found)
    assert found.status == "open"


def test_a_dispute_decision_refused_on_its_form_or_on_its_state(
        client: FlaskClient, session: Session, world: World) -> None:
    """A decision the coordinator can correct (a split of 150 %) is the dispute's page
    again with the message at the field, and writes nothing; deciding a decided dispute
    is the error page (409), never the form again."""
    from datetime import timedelta

    from marketplace.disputes import service as disputes
    from marketplace.disputes.models import MemberDispute
    from marketplace.jobs import completion
    from marketplace.ledger.models import EntrySource, LedgerEntry

    give_profile(session, world.owner_a)
    give_profile(session, world.owner_b)
    job = service.post_job(session, world.owner_a, job_draft(), NOW)
    assert job.id is not None
    done = NOW + timedelta(days=20)  # after the job's start date
    service.claim_job(session, world.owner_b, job.id, NOW)
    completion.report_done(session, world.owner_b, job.id, done)
    completion.confirm_completion(session, world.owner_a, job.id, done)
    dispute = disputes.open_dispute(session, world.owner_b, "job", job.id, "referral_fee",
                                    "The customer called us first.", done)
    login(client, world.coordinator)
    page = f"/disputes/{dispute.id}"
    refused = client.post(f"{page}/decide", data={"outcome": "split", "split_percent": "150",
                                                   "note": "Half"})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422 and 'id="split_percent-err"' in text
    assert "The customer called us first." in text  # the dispute's own page
    session.close()
    assert session.exec(select(LedgerEntry).where(
        LedgerEntry.source == EntrySource.MEMBER_DISPUTE_SETTLED.value)).all() == []
    stored = session.get(MemberDispute, dispute.id)
    assert stored is not None and stored.status == "open"
    session.close()
    disputes.decide(session, world.coordinator, dispute.id, "uphold", None, None,  # type: ignore[arg-type]
                    "It stands", done + timedelta(hours=1))
    again = client.post(f"{page}/decide", data={"outcome": "cancel", "note": "x"})
    assert again.status_code == 409 and 'name="note"' not in again.get_data(as_text=True)
    as_json = client.post(f"{page}/decide", data={"outcome": "cancel", "note": "x"},
                          headers=JSON)
    assert as_json.status_code == 409
    assert as_json.get_json()["error"]["code"] == "already_decided"
