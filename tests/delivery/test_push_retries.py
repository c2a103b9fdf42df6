"""A push service that is busy (429) or failing (5xx): wait, then send exactly once.

The worker runs with its clock standing at chosen instants, so back-off is
checked to the second without sleeping: not one request reaches the push
service before the row is due again, one does when it is, and after
MAX_ATTEMPTS refusals the row gives up for good.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlmodel import Session

from marketplace.delivery.models import Delivery, DeliveryStatus
from marketplace.delivery.worker import FIRST_RETRY, MAX_ATTEMPTS
from tests.conftest import NOW, World
from tests.delivery.push_world import deliveries, devices, post_job, run_worker
from tests.push_service import FakePushService

SECOND = timedelta(seconds=1)


def _only(session: Session) -> Delivery:
    [row] = deliveries(session)
    return row


def _requests(push: FakePushService) -> int:
    """Requests that reached the push service and passed its checks."""
    return len(push.received) + len(push.rejected)


@pytest.mark.parametrize(("status", "retry_after", "wait"), [
    (429, 300, timedelta(seconds=300)),  # the service's Retry-After is longer than ours
    (503, None, FIRST_RETRY),  # no Retry-After: our own first back-off
    (502, 5, FIRST_RETRY),  # a shorter Retry-After never makes us retry sooner
])
def test_a_refused_push_waits_its_back_off_then_goes_once(
    app: Flask, session: Session, jobs_world: World, push: FakePushService,
    status: int, retry_after: int | None, wait: timedelta,
) -> None:
    [phone] = devices(app, push, jobs_world.owner_b, 1)
    push.answer(phone.token, status, retry_after=retry_after)
    job = post_job(session, jobs_world.owner_a, NOW)

    first = run_worker(app, NOW)
    assert (first.retried, first.sent) == (1, 0)
    row = _only(session)
    assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 1)
    assert row.due_at == NOW + wait
    assert row.last_error is not None and str(status) in row.last_error
    assert push.received == [] and _requests(push) == 1

    for early in (NOW + SECOND, NOW + wait - SECOND):
        assert not run_worker(app, early)  # not due: nothing claimed, nothing sent
    assert _requests(push) == 1

    assert run_worker(app, NOW + wait).sent == 1
    [message] = push.wait_for(1)
    assert message.token == phone.token and message.payload["data"]["id"] == job.id
    row = _only(session)
    assert (row.status, row.attempts, row.sent_at) == (DeliveryStatus.SENT, 2, NOW + wait)

    assert not run_worker(app, NOW + wait + timedelta(hours=2))
    assert len(push.received) == 1 and _requests(push) == 2


def test_after_max_attempts_of_refusals_the_row_fails_for_good(
    app: Flask, session: Session, jobs_world: World, push: FakePushService
) -> None:
    [phone] = devices(app, push, jobs_world.owner_b, 1)
    push.answer(phone.token, *[503] * MAX_ATTEMPTS)
    post_job(session, jobs_world.owner_a, NOW)

    at, delays = NOW, []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        done = run_worker(app, at)
        assert done.claimed == 1, f"attempt {attempt} was not made at {at}"
        row = _only(session)
        assert row.attempts == attempt
        if attempt < MAX_ATTEMPTS:
            assert row.status == DeliveryStatus.PENDING
            delays.append(row.due_at - at)
            assert not run_worker(app, row.due_at - SECOND)
            at = row.due_at
    assert row.status == DeliveryStatus.FAILED and row.sent_at is None
    # exponential from 30 s, doubling, capped at an hour
    assert delays == [min(FIRST_RETRY * 2 ** n, timedelta(hours=1))
                      for n in range(MAX_ATTEMPTS - 1)]
    assert [status for _t, status, _r in push.rejected] == [503] * MAX_ATTEMPTS
    assert not run_worker(app, at + timedelta(hours=2))  # failed is final
    assert push.received == [] and _requests(push) == MAX_ATTEMPTS
