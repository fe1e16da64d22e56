"""The readiness page: each check with its result, evidence and stages; the owner's promotion offered
only when every check of the next stage passes, and refused, naming the checks, when they do not."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals.models import FieldPolicy, RetentionRule, RollbackDrill, Stage, Workflow
from audit.models import AuditEvent
from tests.helpers.factories import UserFactory
from tests.helpers.readiness import five_step_review, ready_workflow, rollback_drill, trace_drill

pytestmark = pytest.mark.django_db

PAGE = "workflow-readiness"


def _page(client, user, slug="address-updates"):  # type: ignore[no-untyped-def]
    client.force_login(user)
    return client.get(reverse(PAGE, args=[slug]))


def _promote(client, user, stage, slug="address-updates"):  # type: ignore[no-untyped-def]
    client.force_login(user)
    return client.post(reverse("workflow-promote", args=[slug]), {"stage": stage})


def test_the_page_lists_each_check_with_its_result_evidence_and_the_stages_that_need_it(client):
    on_call = ready_workflow()

    html = _page(client, on_call.owner).content.decode()

    assert html.count('class="check-result passed">Pass</strong>') == 9
    assert "1. Every field it reads, suggests or writes has a policy" in html
    assert "7. A trace drill passed in the last 30 days" in html
    assert f'href="{reverse("workflow-retention", args=["address-updates"])}"' in html
    assert f'href="{reverse("workflow-schedule", args=["address-updates"])}"' in html
    drill = RollbackDrill.objects.get()
    assert f'<a href="{reverse("rollback-drill", args=[drill.pk])}">Rollback drill {drill.pk}</a>' in html
    assert "Start trace drill" in html and "Prompt versions" in html
    assert '<td data-label="Needed for">shadow, canary, live</td>' in html
    assert '<td data-label="Needed for">live</td>' in html
    assert "Five-step review signed off " in html
    assert "Promote to live</button>" in html


def test_the_owner_promotes_a_ready_workflow_and_the_trail_records_it(client):
    on_call = ready_workflow()
    entered = on_call.workflow.stage_changed_at

    answer = _promote(client, on_call.owner, "live")

    assert answer.status_code == 302
    workflow = Workflow.objects.get(slug="address-updates")
    assert workflow.stage == Stage.LIVE and workflow.stage_changed_at > entered
    event = AuditEvent.objects.get(action="workflow.promoted")
    assert (event.actor_label, event.old_value, event.new_value) == ("owner", {"stage": "canary"}, {"stage": "live"})
    assert event.details["source"] == "page"
    assert "address-updates moved to Live." in client.get(answer["Location"]).content.decode()


def test_a_failing_check_hides_the_button_and_a_promotion_sent_anyway_is_refused_naming_it(client):
    on_call = ready_workflow()
    on_call.workflow.trace_drills.all().delete()

    html = _page(client, on_call.owner).content.decode()
    assert "Promote to live" not in html
    assert "Moving to live waits for check 7 to pass." in html
    assert html.count('class="check-result failed">Fail</strong>') == 1

    answer = _promote(client, on_call.owner, "live")
    assert answer.status_code == 409
    assert (
        "address-updates cannot move to live while these checks fail: "
        "check 7 (a trace drill passed in the last 30 days)" in answer.content.decode()
    )
    assert Workflow.objects.get(slug="address-updates").stage == Stage.CANARY
    assert not AuditEvent.objects.filter(action="workflow.promoted").exists()


def test_only_the_owner_sees_the_button_and_others_are_refused(client):
    on_call = ready_workflow()

    html = _page(client, on_call.lead).content.decode()
    assert "Promote to" not in html
    assert "the owner, owner, moves it on" in html
    answer = _promote(client, on_call.lead, "live")
    assert answer.status_code == 403
    assert "only the owner of address-updates moves it to a later stage" in answer.content.decode()
    assert Workflow.objects.get(slug="address-updates").stage == Stage.CANARY


def test_a_promotion_to_a_stage_other_than_the_next_is_refused(client):
    on_call = ready_workflow(stage=Stage.SHADOW)
    answer = _promote(client, on_call.owner, "live")
    assert answer.status_code == 409
    assert "address-updates is in shadow: from this page it moves only to canary" in answer.content.decode()
    assert _promote(client, on_call.owner, "canary").status_code == 302
    assert Workflow.objects.get(slug="address-updates").stage == Stage.CANARY
    Workflow.objects.filter(slug="address-updates").update(stage=Stage.PAUSED)
    answer = _promote(client, on_call.owner, "live")
    assert "is in paused: from this page it moves nowhere: the workflow file says where" in answer.content.decode()


def test_a_workflow_out_of_sight_is_not_found_and_promotion_is_post_only(client):
    on_call = ready_workflow()
    assert _page(client, UserFactory(username="stranger")).status_code == 404
    assert _page(client, on_call.owner, slug="no-such").status_code == 404
    client.force_login(on_call.owner)
    assert client.get(reverse("workflow-promote", args=["address-updates"])).status_code == 405


def test_the_workflows_page_links_each_workflow_to_its_readiness_page(client):
    on_call = ready_workflow()
    client.force_login(on_call.owner)
    html = client.get(reverse("workflow-list")).content.decode()
    assert f'<a href="{reverse(PAGE, args=["address-updates"])}">Readiness</a>' in html


def test_the_page_runs_a_fixed_number_of_queries_whatever_the_evidence(client, django_assert_num_queries):
    on_call = ready_workflow()
    workflow = on_call.workflow
    client.force_login(on_call.owner)
    with CaptureQueriesContext(connection) as first:
        assert client.get(reverse(PAGE, args=[workflow.slug])).status_code == 200
    for days in (3, 5, 7):
        rollback_drill(workflow, days_ago=days)
        trace_drill(workflow, days_ago=days)
        five_step_review(workflow, days_ago=days)
    for name in ("email", "phone", "priority"):
        FieldPolicy.objects.create(workflow=workflow, record_type="customer", field=name, access="read")
    RetentionRule.objects.create(
        workflow=workflow, kind="output", bucket="live", window=timedelta(days=1), owner=on_call.owner
    )
    Workflow.objects.filter(pk=workflow.pk).update(stage_changed_at=timezone.now() - timedelta(days=9))
    with django_assert_num_queries(len(first)):
        assert client.get(reverse(PAGE, args=[workflow.slug])).status_code == 200
