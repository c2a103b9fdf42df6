"""The agreement's dispute, target and buy-out terms (#20): the coordinator writes them in
the editor until a member signs, then only a proposal changes them; every member reads
them on the agreement page and through the API, a refused value publishes nothing, and
versions from before them get the defaults.

`world.other_coordinator`'s cluster has a published agreement that no member has
accepted yet: a charter still being written.  `world.coordinator`'s is signed."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, func, select

from marketplace.clusters import agreements
from marketplace.clusters.models import Agreement, AgreementProposal
from marketplace.clusters.targets import MAX_GOAL, TARGET_METRICS, goal_refusal
from marketplace.clusters.terms_inputs import targets_from_form, typed_targets
from marketplace.errors import ValidationError
from tests.api.conftest import bearer
from tests.conftest import AGREEMENT_FORM, World, login
from tests.test_migrations import _drift, demo_season_down_and_up

TODAY = date.today()
BASE = AGREEMENT_FORM


def _versions(session: Session) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(Agreement)).one()


def test_the_coordinator_writes_targets_disputes_and_the_buy_out_and_members_read_them(
    client: FlaskClient, session: Session, world: World
) -> None:
    login(client, world.other_coordinator)
    editor = client.get("/agreement/edit").get_data(as_text=True)
    for name in ("dispute_window_days", "dispute_resolver", "dispute_decide_days",
                 "buyout_value_percent", "target-overflow_value_kept",
                 "target-machine_utilization_bp"):
        assert f'name="{name}"' in editor
    done = client.post("/agreement/edit", data={
        **BASE, "dispute_window_days": "21", "dispute_resolver": "panel",
        "dispute_decide_days": "10", "buyout_value_percent": "80.5",
        "target-overflow_value_kept": "25000", "target-jobs_handed_over": "6",
        "target-machine_utilization_bp": "42.5", "target-equipment_fees_kept": ""})
    assert done.status_code == 302, done.get_data(as_text=True)
    current = agreements.agreement_in_force(session, world.other_owner.cluster_id)
    assert current is not None
    assert (current.dispute_window_days, current.dispute_resolver,
            current.dispute_decide_days, current.buyout_value_bp) == (21, "panel", 10, 8050)
    assert current.targets == {"jobs_handed_over": 6, "machine_utilization_bp": 4250,
                               "overflow_value_kept": 25_000_00}
    again = client.get("/agreement/edit").get_data(as_text=True)
    assert 'value="42.5"' in again and 'value="25000.00"' in again and 'value="80.50"' in again

    member = client.application.test_client()
    login(member, world.other_owner)
    shown = member.get("/agreement").get_data(as_text=True)
    assert "Overflow value kept in the cluster: $25,000.00 per quarter" in shown
    assert "Machine utilization: 42.5 % per quarter" in shown
    assert "may dispute its money within 21 days" in shown
    assert "A panel of members party to none of it decides within 10 days." in shown
    assert "at 80.5 % of the machine’s agreed value" in shown

    api = client.application.test_client().get(
        "/api/v1/agreement", headers=bearer(session, world.other_owner)).get_json()
    assert api["targets"] == current.targets
    assert (api["dispute_window_days"], api["dispute_resolver"], api["dispute_decide_days"],
            api["buyout_value_bp"], api["decision_rule"]) == (21, "panel", 10, 8050,
                                                             "majority")


@pytest.mark.parametrize(("typed", "field"), [
    ({"dispute_window_days": "0"}, "dispute_window_days"),
    ({"dispute_window_days": "91"}, "dispute_window_days"),
    ({"dispute_decide_days": "2"}, "dispute_decide_days"),
    ({"dispute_resolver": "the loudest"}, "dispute_resolver"),
    ({"buyout_value_percent": "100.01"}, "buyout_value_percent"),
    ({"target-jobs_handed_over": "six"}, "target-jobs_handed_over"),
    ({"target-jobs_handed_over": "0"}, "target-jobs_handed_over"),
    ({"target-machine_utilization_bp": "101"}, "target-machine_utilization_bp"),
    ({"target-machine_utilization_bp": "12.345"}, "target-machine_utilization_bp"),
    ({"target-overflow_value_kept": "NaN"}, "target-overflow_value_kept"),
])
def test_a_refused_term_names_its_field_and_publishes_nothing(
    client: FlaskClient, session: Session, world: World, typed: dict[str, str], field: str
) -> None:
    login(client, world.other_coordinator)
    before = _versions(session)
    refused = client.post("/agreement/edit", data={**BASE, **typed})
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert f'id="{field}"' in page and 'aria-invalid="true"' in page
    assert _versions(session) == before


def test_blank_terms_take_the_defaults(client: FlaskClient, session: Session,
                                       world: World) -> None:
    login(client, world.other_coordinator)
    assert client.post("/agreement/edit", data=BASE).status_code == 302
    current = agreements.agreement_in_force(session, world.other_owner.cluster_id)
    assert current is not None
    assert (current.dispute_window_days, current.dispute_resolver, current.dispute_decide_days,
            current.buyout_value_bp, current.targets) == (14, "coordinator", 14, 10_000, {})


def test_once_a_member_signed_the_coordinator_can_only_propose_a_change(
    client: FlaskClient, session: Session, world: World
) -> None:
    login(client, world.coordinator)
    sent = client.get("/agreement/edit")
    assert sent.status_code == 302 and sent.location.endswith("/agreement/proposals/new")
    assert "only if they vote for it" in client.get(sent.location).get_data(as_text=True)
    before = _versions(session)
    refused = client.post("/agreement/edit", data={**BASE, "referral_fee_percent": "9"})
    assert refused.status_code == 409
    assert "Propose the change" in refused.get_data(as_text=True)
    assert _versions(session) == before
    page = client.get("/agreement").get_data(as_text=True)
    assert "/agreement/proposals/new" in page and "/agreement/edit" not in page


def test_a_proposal_carries_new_targets_and_minimum_coverage(
    client: FlaskClient, session: Session, world: World
) -> None:
    login(client, world.coordinator)
    form = client.get("/agreement/proposals/new").get_data(as_text=True)
    assert 'name="target-jobs_handed_over"' in form and 'name="min_coverage-tree_work"' in form
    made = client.post("/agreement/proposals/new", data={
        **BASE, "reason": "Measure what we share.", "voting_days": "7",
        "target-jobs_handed_over": "8", "min_coverage-tree_work": "1000000",
        "dispute_resolver": "panel"})
    assert made.status_code == 302, made.get_data(as_text=True)
    session.expire_all()
    proposal = session.exec(select(AgreementProposal)).one()
    assert proposal.terms["targets"] == {"jobs_handed_over": 8}
    assert proposal.terms["min_coverage"] == {"tree_work": 1_000_000_00}
    assert proposal.terms["dispute_resolver"] == "panel"
    shown = client.get(made.location).get_data(as_text=True)
    assert "A panel of members party to none of it decides within 14 days." in shown


def test_the_service_refuses_goals_outside_their_unit() -> None:
    assert goal_refusal("jobs_handed_over", 6) is None
    assert goal_refusal("machine_utilization_bp", 10_000) is None
    assert goal_refusal("machine_utilization_bp", 10_001) is not None
    assert goal_refusal("jobs_handed_over", True) is not None  # a bool is not a count
    assert goal_refusal("customers_poached", 1) is not None


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(goals=st.fixed_dictionaries({}, optional={
    code: st.integers(1, MAX_GOAL[metric.unit]) for code, metric in TARGET_METRICS.items()}),
    locale=st.sampled_from(["en", "es", "fr", "de"]))
@example(goals={"machine_utilization_bp": 5_000}, locale="en")  # 50 %, once shown as "5"
def test_a_goal_shown_in_the_editor_reads_back_as_the_same_goal_in_every_language(
    app: Flask, goals: dict[str, int], locale: str
) -> None:
    """What the editor prefills is what publishing stores: re-publishing an unchanged form
    never moves a target by a cent or a basis point, whatever the language's decimals."""
    from flask_babel import force_locale

    with app.test_request_context("/"), force_locale(locale):
        typed = typed_targets(goals, "EUR")
    form = {f"target-{code}": text for code, text in typed.items()}
    with app.test_request_context("/", method="POST", data=form), force_locale(locale):
        assert targets_from_form("EUR") == goals


def test_the_service_refuses_an_unknown_metric_and_names_it() -> None:
    terms = agreements.AgreementTerms(
        purpose="p", scope_overflow_jobs=True, scope_equipment=False, scope_joint_bids=False,
        referral_fee_bp=500, platform_fee_bp=100, sunset_on=TODAY + timedelta(days=30),
        exit_notice_days=30, information_rules="r", targets={"customers_poached": 3})
    with pytest.raises(ValidationError) as refused:
        agreements._validate_terms(terms, TODAY)
    assert set(refused.value.fields) == {"targets"}
    assert Decimal(terms.buyout_value_bp) == 10_000


def test_existing_versions_get_the_default_terms_over_a_season(database_url: str) -> None:
    with demo_season_down_and_up(database_url, "0016") as engine:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT dispute_window_days, dispute_resolver, dispute_decide_days, "
                "buyout_value_bp FROM agreement").all()
        assert rows and {tuple(r) for r in rows} == {(14, "coordinator", 14, 10_000)}
        assert _drift(database_url) == []
