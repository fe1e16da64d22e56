"""`/metrics`: the token rules, and each figure moving when its event happens, scraped over HTTP."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from approvals.models import Proposal, ProposalStatus, StopScope
from approvals.noticing.metrics import QUERIES
from approvals.overrides.services import override_grant
from approvals.review.services import proposal_approve, proposal_reject
from approvals.stops.services import stop_engage, stop_release
from audit.services import Actor, audit_verify_incremental
from records.services.outages import store_outage_note
from tests.approvals.noticing.scraping import TOKEN, Scrape, scrape
from tests.helpers.factories import CustomerFactory, FieldPolicyFactory, UserFactory
from tests.helpers.overrides import REASON, after_hours_now
from tests.helpers.pipeline import POLICIES, Pipeline, make_pipeline, proposal_body
from tests.helpers.sight import looked_at

V7 = {"workflow": "address-updates", "prompt_version": "address-update@7"}


@pytest.fixture
def token(settings):  # type: ignore[no-untyped-def]
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


# --- who may read it ---------------------------------------------------------------------------


def test_without_a_configured_token_the_metrics_are_not_served(db, settings):
    settings.METRICS_TOKEN = ""
    response = Client().get("/metrics", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 404
    assert response.content.decode() == "Not found: metrics are served only once METRICS_TOKEN is set.\n"


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer not-the-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}"],
)
def test_a_scrape_without_the_right_token_is_refused_and_told_how(db, token, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = Client().get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert response.content.decode() == "Metrics need the token: send Authorization: Bearer <METRICS_TOKEN>.\n"
    assert "countersign_" not in response.content.decode()


def test_a_signed_in_superuser_without_the_token_is_refused_too(db, token):
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get("/metrics").status_code == 401


def test_the_right_token_reads_the_metrics_in_prometheus_text_format(db, token):
    response = Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "no-cache" in response["Cache-Control"]
    body = response.content.decode()
    for name in (
        "# TYPE countersign_proposals_total counter",
        "# TYPE countersign_decision_time_seconds histogram",
        "# TYPE countersign_apply_lag_seconds histogram",
        "# TYPE countersign_proposals_pending gauge",
        "# TYPE countersign_store_reachable gauge",
        'countersign_stops_engaged{scope="global",workflow=""} 0.0',
        "countersign_audit_chain_broken 0.0",
    ):
        assert name in body
    assert Client().post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 405


# --- proposals: submitted, approved by a person or the policy, rejected, decision time, waiting ---


@pytest.fixture
def pipeline(workflow) -> Pipeline:  # type: ignore[no-untyped-def]
    for (record_type, field), access in POLICIES.items():
        FieldPolicyFactory(workflow=workflow, record_type=record_type, field=field, access=access)
    return make_pipeline(workflow)


def _submit(pipeline: Pipeline, **overrides: object) -> Proposal:
    customer = CustomerFactory(shipping_address="4 Old Mill Lane, Leith", priority="normal")
    response = pipeline.post("/api/v1/proposals", proposal_body(record_id=customer.record_id, **overrides))
    assert response.status_code == 201, response.content
    return Proposal.objects.get(pk=response.json()["id"])


def test_each_outcome_of_a_proposal_moves_its_counter_and_the_waiting_gauges(db, token, pipeline, lead):
    before = scrape()
    assert before.value("countersign_proposals_total", outcome="submitted", **V7) is None

    suggested = _submit(pipeline)
    now = scrape()
    assert now.value("countersign_proposals_total", outcome="submitted", **V7) == 1
    assert now.value("countersign_proposals_pending", **V7) == 1
    assert now.value("countersign_proposals_approved_waiting", **V7) == 0
    assert now.value("countersign_proposals_total", outcome="approved_by_person", **V7) == 0

    by_policy = _submit(pipeline, changes={"priority": "high"}, base={"priority": "normal"}, follow_ups=[])
    assert by_policy.status == ProposalStatus.APPROVED
    now = scrape()
    assert now.value("countersign_proposals_total", outcome="submitted", **V7) == 2
    assert now.value("countersign_proposals_total", outcome="approved_by_policy", **V7) == 1
    assert now.value("countersign_proposals_approved_waiting", **V7) == 1
    assert now.value("countersign_decision_time_seconds_count", **V7) is None  # the policy is no person

    # One waited ten minutes for a person, another two hours.
    Proposal.objects.filter(pk=suggested.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    to_reject = _submit(pipeline, prompt_version="address-update@7")
    Proposal.objects.filter(pk=to_reject.pk).update(created_at=timezone.now() - timedelta(hours=2))
    now = scrape()
    assert now.value("countersign_proposals_pending", **V7) == 2
    assert 7200 <= now.number("countersign_oldest_pending_age_seconds", **V7) < 7300

    to_reject.refresh_from_db()
    proposal_reject(
        proposal=to_reject, reviewer=lead, reason="Wrong customer", shown_token=looked_at(to_reject, lead)["shown"]
    )
    now = scrape()
    assert now.value("countersign_proposals_total", outcome="rejected", **V7) == 1
    assert now.value("countersign_decision_time_seconds_count", **V7) == 1
    assert now.value("countersign_decision_time_seconds_bucket", le="3600.0", **V7) == 0
    assert now.value("countersign_decision_time_seconds_bucket", le="14400.0", **V7) == 1
    assert 600 <= now.number("countersign_oldest_pending_age_seconds", **V7) < 700

    suggested.refresh_from_db()
    proposal_approve(proposal=suggested, reviewer=lead, shown_token=looked_at(suggested, lead)["shown"])
    now = scrape()
    assert now.value("countersign_proposals_total", outcome="approved_by_person", **V7) == 1
    assert now.value("countersign_proposals_total", outcome="approved_by_policy", **V7) == 1
    assert now.value("countersign_proposals_pending", **V7) == 0
    assert now.value("countersign_oldest_pending_age_seconds", **V7) == 0
    assert now.value("countersign_proposals_approved_waiting", **V7) == 2
    assert now.value("countersign_decision_time_seconds_count", **V7) == 2
    assert now.value("countersign_decision_time_seconds_bucket", le="300.0", **V7) == 0
    assert now.value("countersign_decision_time_seconds_bucket", le="900.0", **V7) == 1
    assert now.value("countersign_decision_time_seconds_bucket", le="+Inf", **V7) == 2
    assert 7800 <= now.number("countersign_decision_time_seconds_sum", **V7) < 8000
    # Nothing was written yet: no applies, and the other outcomes are there, at zero.
    for outcome in ("applied", "conflict", "failed", "undone", "expired", "cancelled", "shadowed"):
        assert now.value("countersign_proposals_total", outcome=outcome, **V7) == 0


def test_each_version_is_counted_apart(db, token, pipeline):
    _submit(pipeline)
    _submit(pipeline, prompt_version="address-update@8")
    _submit(pipeline, prompt_version="address-update@8")
    now = scrape()
    assert now.value("countersign_proposals_total", outcome="submitted", **V7) == 1
    v8 = {**V7, "prompt_version": "address-update@8"}
    assert now.value("countersign_proposals_total", outcome="submitted", **v8) == 2
    assert now.value("countersign_proposals_pending", **v8) == 2


def test_a_scrape_runs_the_same_few_queries_however_many_proposals(db, token, pipeline, django_assert_num_queries):
    _submit(pipeline)
    with django_assert_num_queries(QUERIES):
        assert Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    for version in range(5):
        for _ in range(3):
            _submit(pipeline, prompt_version=f"address-update@{version}")
    with django_assert_num_queries(QUERIES):
        response = Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert (
        Scrape.of(response.content.decode()).value(
            "countersign_proposals_total",
            outcome="submitted",
            workflow="address-updates",
            prompt_version="address-update@4",
        )
        == 3
    )


# --- stops and overrides -------------------------------------------------------------------------


def test_a_stop_and_an_override_show_while_in_force(db, token):
    world = after_hours_now()
    slug = world.workflow.slug
    assert scrape().value("countersign_stops_engaged", scope="workflow", workflow=slug) == 0

    switch = stop_engage(
        scope=StopScope.WORKFLOW,
        reason="Addresses from tonight's run look wrong",
        actor=Actor.user(world.ops),
        user=world.ops,
        workflow=world.workflow,
    )
    now = scrape()
    assert now.value("countersign_stops_engaged", scope="workflow", workflow=slug) == 1
    assert now.value("countersign_stops_engaged", scope="global", workflow="") == 0
    assert now.value("countersign_overrides_in_force", workflow=slug, block="stop_switch") == 0

    override_grant(user=world.ops, block="stop_switch", scope="workflow", reason=REASON, workflow=world.workflow)
    now = scrape()
    assert now.value("countersign_overrides_in_force", workflow=slug, block="stop_switch") == 1
    assert now.value("countersign_overrides_in_force", workflow=slug, block="canary_cap") == 0

    stop_release(switch=switch, user=world.ops, note="fixed")
    assert scrape().value("countersign_stops_engaged", scope="workflow", workflow=slug) == 0

    global_switch = stop_engage(scope=StopScope.GLOBAL, reason="Everything waits", actor=Actor.user(world.ops))
    assert scrape().value("countersign_stops_engaged", scope="global", workflow="") == 1
    stop_release(switch=global_switch, user=world.ops)
    assert scrape().value("countersign_stops_engaged", scope="global", workflow="") == 0


# --- stores and the audit chain ------------------------------------------------------------------


def test_a_store_outage_turns_its_store_down_and_the_others_stay_up(db, token):
    now = scrape()
    assert [
        now.value("countersign_store_reachable", record_type=t, store="builtin") for t in ("customer", "order")
    ] == [
        1,
        1,
    ]
    store_outage_note(record_type="customer", store="builtin", reason="connection refused", worker="w1")
    now = scrape()
    assert now.value("countersign_store_reachable", record_type="customer", store="builtin") == 0
    assert now.value("countersign_store_reachable", record_type="order", store="builtin") == 1
    assert now.value("countersign_store_reachable", record_type="ticket", store="builtin") == 1


def test_the_chain_verification_age_appears_once_verified_and_grows(db, token):
    assert scrape().value("countersign_audit_chain_verified_age_seconds") is None
    audit_verify_incremental()
    first = scrape().value("countersign_audit_chain_verified_age_seconds")
    assert first is not None and 0 <= first < 5
    with time_machine.travel(timezone.now() + timedelta(minutes=7)):
        later = scrape()
    assert 420 <= later.number("countersign_audit_chain_verified_age_seconds") < 430
    assert later.value("countersign_audit_chain_broken") == 0
