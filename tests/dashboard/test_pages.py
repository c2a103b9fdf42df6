"""The dashboard page and its CSVs: charts with tables, who sees what, a fixed number of
queries, every language, and refusals with a message per field."""

from __future__ import annotations

import csv
import io
import re
from contextlib import AbstractContextManager
from datetime import date

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session

from marketplace.clusters.service import update_preferences
from marketplace.dashboard.access import CLUSTER, scope_for
from marketplace.dashboard.figures import figures, plain
from marketplace.dashboard.periods import month_range
from marketplace.db import utcnow
from marketplace.equipment import booking, listings
from marketplace.jobs import completion, service
from tests.conftest import login
from tests.dashboard.conftest import MONTHS, Spring, utc
from tests.equipment.conftest import anytime_draft, at
from tests.jobs.conftest import job_draft
from tests.statements import recorded

RANGE = f"first={MONTHS[0]}&last={MONTHS[-1]}"
CHARTS = ("jobs", "value", "utilization", "fees", "revenue", "members", "rating",
          "completion")
TABLE = re.compile(r'<table id="table-(\w+)">(.*?)</table>', re.S)
ROW = re.compile(r"<tr>(.*?)</tr>", re.S)
VALUE = re.compile(r'data-value="([^"]*)"')


def _get(client: FlaskClient, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return response.get_data(as_text=True)


def tables(page: str) -> dict[str, list[list[str]]]:
    """Each chart's table as the data-value of every cell, row by row (body only)."""
    found = {}
    for name, body in TABLE.findall(page):
        tbody = body.split("<tbody>", 1)[1]
        found[name] = [VALUE.findall(row) for row in ROW.findall(tbody)]
    return found


def csv_rows(client: FlaskClient, url: str) -> list[list[str]]:
    response = client.get(url)
    assert response.status_code == 200, url
    assert response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_coordinator_sees_every_chart_with_its_table_and_csv(client: FlaskClient,
                                                             session: Session,
                                                             spring: Spring) -> None:
    login(client, spring.world.coordinator)
    page = _get(client, f"/dashboard?{RANGE}")
    found = tables(page)
    assert tuple(found) == CHARTS
    for name in CHARTS:
        # An accessible SVG image: role, title and description, named by them.
        assert f'aria-labelledby="chart-{name}-title chart-{name}-desc"' in page
        assert re.search(rf'<svg [^>]*role="img"[^>]*aria-labelledby="chart-{name}-title',
                         page)
        assert f'<title id="chart-{name}-title">' in page
        assert f'<desc id="chart-{name}-desc">' in page
        rows = csv_rows(client, f"/dashboard/{name}.csv?{RANGE}&member={CLUSTER}")
        assert rows[1:] == found[name], name
        assert len(rows[0]) == len(found[name][0])
    # The CSP allows no inline style or script: presentation attributes only.
    assert "style=" not in page
    assert all('src="' in tag for tag in re.findall(r"<script[^>]*>", page))
    # The table shows what the CSV holds, in the viewer's formats.
    revenue = csv_rows(client, f"/dashboard/revenue.csv?{RANGE}")
    assert revenue[0] == ["Month", "Settled", "Received (CAD)", "Paid (CAD)", "Net (CAD)"]
    assert revenue[1] == ["2026-03", "1", "75.00", "60.00", "15.00"]
    assert revenue[3] == ["2026-05", "0", "", "", ""]
    assert "$75.00" in page and "March 2026" in page  # months by their names
    members = csv_rows(client, f"/dashboard/members.csv?{RANGE}")
    assert members[1:] == [["Alpha Lawns", "210.00", "0.00", "210.00"],
                           ["Beta Stone", "0.00", "220.00", "-220.00"],
                           ["Gamma Trees", "35.00", "0.00", "35.00"]]


def test_the_page_shows_what_the_metrics_compute(client: FlaskClient, session: Session,
                                                 spring: Spring) -> None:
    """Against the real clock (the page's), every table cell is the figure's value."""
    login(client, spring.world.owner_b)
    found = tables(_get(client, f"/dashboard?{RANGE}"))
    scope = scope_for(session, spring.world.owner_b, None)
    months = month_range(spring.world.cluster, utcnow(), MONTHS[0], MONTHS[-1])
    for fig in figures(session, scope, months, utcnow()):
        expected = [[plain(c.kind, cell, "CAD") for c, cell in zip(fig.columns, row,
                                                                    strict=True)]
                    for row in fig.rows]
        assert found[fig.name] == expected, fig.name


def test_a_member_sees_the_cluster_and_itself_only(client: FlaskClient, session: Session,
                                                   spring: Spring) -> None:
    world = spring.world
    login(client, world.owner_b)
    own = _get(client, f"/dashboard?{RANGE}")
    totals = _get(client, f"/dashboard?{RANGE}&member={CLUSTER}")
    assert "Figures for Beta Stone" in own and "Figures for the whole cluster" in totals
    for page in (own, totals):
        assert "Alpha Lawns" not in page and "Gamma Trees" not in page
        assert "members" not in tables(page)
    assert tables(own)["revenue"][0] == ["2026-03", "1", "0.00", "60.00", "-60.00"]
    # Besides B the cluster has two members (A and C): fewer than k = 3, so what they
    # received is withheld -- it would be C's credit, besides A's referral fee, which B
    # paid and knows (#16).  What members paid is B's own payments only: shown.
    assert tables(totals)["revenue"][0] == ["2026-03", "1", "", "60.00", ""]
    assert "too few to show" in totals and "fewer than 3 other members" in totals
    # A's own figures (its 50.00 referral fee, its 5.00 rating) appear nowhere.
    csvs = [io.StringIO(client.get(f"/dashboard/{n}.csv?{RANGE}&member={m}")
                        .get_data(as_text=True)).getvalue()
            for n in CHARTS if n != "members" for m in ("", CLUSTER)]
    for text in (own, totals, *csvs):
        assert 'data-value="50.00"' not in text and 'data-value="5.00"' not in text
        assert not re.search(r"(^|,)(50\.00|5\.00)(,|$)", text, re.M)
    # Asking for A's figures is refused, page and CSV alike; so is the per-member chart.
    for url in (f"/dashboard?member={world.member_a_id}",
                f"/dashboard/revenue.csv?member={world.member_a_id}",
                f"/dashboard/members.csv?{RANGE}"):
        body = _get(client, url, 403)
        assert "Alpha Lawns" not in body and "210.00" not in body
    # A's crew sees A's figures, like its owner.
    login(client, world.crew_a)
    assert tables(_get(client, f"/dashboard?{RANGE}&member={world.member_a_id}")
                  )["revenue"][0] == ["2026-03", "1", "50.00", "0.00", "50.00"]


def test_another_cluster_gets_404_for_our_members(client: FlaskClient, spring: Spring) -> None:
    world = spring.world
    for rival in (world.other_owner, world.other_coordinator):
        login(client, rival)
        for url in (f"/dashboard?member={world.member_a_id}",
                    f"/dashboard/jobs.csv?member={world.member_a_id}",
                    "/dashboard?member=999999"):
            body = _get(client, url, 404)
            assert "Alpha Lawns" not in body
        # Its own dashboard shows none of our numbers.
        page = _get(client, f"/dashboard?{RANGE}&member={CLUSTER}")
        values = {v for rows in tables(page).values() for row in rows for v in row[1:]}
        assert values <= {"", "0", "0.00", "0.0"}, values


@pytest.mark.parametrize(("query", "field"), [
    ("first=2026-13", "first"), ("last=soon", "last"), ("first=2026-06&last=2026-01", "first"),
    ("first=2020-01&last=2026-01", "last"), ("member=abc", "member"),
])
def test_bad_filters_get_a_422_with_a_message_per_field(client: FlaskClient, spring: Spring,
                                                        query: str, field: str) -> None:
    login(client, spring.world.coordinator)
    page = _get(client, f"/dashboard?{query}", 422)
    assert f'id="{field}-err"' in page and 'aria-invalid="true"' in page
    assert "<svg" not in page.split("<main", 1)[1]
    assert client.get(f"/dashboard/jobs.csv?{query}").status_code == 422
    assert client.get(f"/dashboard/jobs.csv?{query}",
                      headers={"Accept": "application/json"}).get_json()["error"]["fields"]
    assert _get(client, "/dashboard/nothing.csv", 404)


def test_the_navigation_links_to_the_dashboard(client: FlaskClient, spring: Spring) -> None:
    for user in (spring.world.coordinator, spring.world.crew_a):
        login(client, user)
        assert 'href="/dashboard"' in _get(client, "/")
    client.post("/logout")
    assert client.get("/dashboard").status_code == 302


@pytest.mark.parametrize("lang", ["es", "fr", "de"])
def test_the_page_renders_in_every_language(client: FlaskClient, session: Session,
                                            spring: Spring, lang: str) -> None:
    pages = []
    for user in (spring.world.coordinator, spring.world.owner_b):
        update_preferences(session, user, lang, None, None)
        login(client, user)
        pages.append(_get(client, f"/dashboard?{RANGE}"))
        assert f'<html lang="{lang}' in pages[-1]
        assert {"es": "marzo de 2026", "fr": "mars 2026", "de": "März 2026"}[lang] in pages[-1]
        # The CSV keeps plain numbers whatever the language.
        assert csv_rows(client, f"/dashboard/revenue.csv?{RANGE}")[1][3] == "60.00"
    # Money and numbers the viewer's way: the cluster received 75,00 in March.
    assert "75,00" in pages[0] and "60,00" in pages[1]


def counting(app: Flask) -> AbstractContextManager[list[str]]:
    """Every SQL statement the app's engine runs meanwhile."""
    return recorded(app.extensions["engine"])


def _more_activity(session: Session, spring: Spring, count: int) -> None:
    """`count` more jobs taken, done, confirmed and rated, and `count` more bookings of a
    second machine, spread over May: more rows of every kind the dashboard reads."""
    world = spring.world
    machine = listings.list_machine(session, world.owner_b, anytime_draft(buffer_minutes=0),
                                     utc(5, 1))
    for n in range(count):
        day = date(2026, 5, 4 + n % 20)
        job = service.post_job(session, world.owner_a, job_draft(
            title=f"Extra job {n}", starts_on=day, ends_on=day, value_minor=10_000 + n),
            utc(5, 1))
        service.claim_job(session, world.owner_b, job.id, utc(5, 2))  # type: ignore[arg-type]
        completion.report_done(session, world.owner_b, job.id, utc(5, 25))  # type: ignore[arg-type]
        completion.confirm_completion(session, world.owner_a, job.id, utc(5, 26))  # type: ignore[arg-type]
        completion.rate(session, world.owner_a, job.id, spring.b, 3 + n % 3, True, "",  # type: ignore[arg-type]
                        utc(5, 27))
        booking.book(session, world.owner_a, machine.id, at(day, 1 + n // 20),  # type: ignore[arg-type]
                     at(day, 2 + n // 20), utc(5, 1))


@pytest.mark.parametrize(("who", "member"), [("coordinator", ""), ("owner_b", ""),
                                            ("owner_b", CLUSTER)])
def test_queries_do_not_grow_with_the_data(app: Flask, client: FlaskClient,
                                           session: Session, spring: Spring,
                                           who: str, member: str) -> None:
    """The coordinator, a member's own figures, and a member's pooled cluster totals."""
    login(client, getattr(spring.world, who))
    with counting(app) as first:  # a member's first read of closed months stores them
        _get(client, f"/dashboard?{RANGE}&member={member}")
    assert len(first) <= 40, first
    with counting(app) as before:
        _get(client, f"/dashboard?{RANGE}&member={member}")
    _more_activity(session, spring, 25)
    session.commit()
    with counting(app) as after:
        page = _get(client, f"/dashboard?{RANGE}&member={member}")
    assert "Extra job" not in page
    assert len(after) == len(before), (len(before), len(after))
    assert len(after) <= 20, after
    with counting(app) as one_csv:
        client.get(f"/dashboard/utilization.csv?{RANGE}")
    assert len(one_csv) <= 15, one_csv
