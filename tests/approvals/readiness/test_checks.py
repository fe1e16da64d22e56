"""The nine readiness checks, each passing on its evidence and failing, in plain words, without it."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import Lane, RollbackDrill, Stage, StopSwitch, UndoJob, Workflow
from approvals.readiness.checks import checks_needed, is_forward, readiness_by_workflow, readiness_of
from audit.models import Artifact
from records.models import Change
from tests.helpers.factories import BatchFactory, FieldPolicyFactory, UserFactory
from tests.helpers.readiness import five_step_review, ready_workflow, rollback_drill, trace_drill

pytestmark = pytest.mark.django_db


def _check(workflow: Workflow, number: int):  # type: ignore[no-untyped-def]
    workflow.refresh_from_db()
    return readiness_of(workflow, target_stage=Stage.LIVE).checks[number - 1]


def _change(workflow: Workflow, **fields) -> Workflow:  # type: ignore[no-untyped-def]
    Workflow.objects.filter(pk=workflow.pk).update(**fields)
    workflow.refresh_from_db()
    return workflow


def test_a_workflow_with_all_its_evidence_passes_every_check_for_live():
    workflow = ready_workflow().workflow

    readiness = readiness_of(workflow, target_stage=Stage.LIVE)

    assert [check.number for check in readiness.checks if check.passed] == list(range(1, 10))
    assert readiness.ready and not readiness.released_against_readiness
    assert "Systems declared: Help desk, CRM; 1 outside service" in readiness.checks[0].detail
    assert "with Rae Sato as second owner" in readiness.checks[2].detail
    assert "passed in 24.9 s (stop 0.4 s, undo 21.0 s, check 3.5 s); the target is 10m" in readiness.checks[5].detail


def test_each_stage_needs_its_own_checks_and_each_check_says_where_it_is_needed():
    assert checks_needed(Stage.DRAFT) == [] and checks_needed(Stage.PAUSED) == []
    assert checks_needed(Stage.SHADOW) == [1, 2, 3, 5]
    assert checks_needed(Stage.CANARY) == [1, 2, 3, 4, 5, 6, 8]
    assert checks_needed(Stage.LIVE) == list(range(1, 10))
    checks = readiness_of(ready_workflow().workflow).checks
    assert checks[0].needed_for == ("shadow", "canary", "live")
    assert checks[3].needed_for == ("canary", "live")
    assert checks[6].needed_for == ("live",)


@pytest.mark.parametrize(
    ("before", "after", "forward"),
    [
        ("draft", "shadow", True),
        ("draft", "live", True),
        ("shadow", "canary", True),
        ("paused", "shadow", True),
        ("live", "canary", False),
        ("canary", "shadow", False),
        ("live", "paused", False),
        ("paused", "draft", False),
        ("shadow", "draft", False),
    ],
)
def test_only_moves_to_a_later_stage_or_out_of_a_pause_are_forward(before, after, forward):
    assert is_forward(stage_before=before, stage_after=after) is forward


def test_check_1_fails_without_systems_and_names_a_field_a_system_reads_without_a_policy():
    workflow = _change(ready_workflow().workflow, systems=[])
    assert _check(workflow, 1).detail == "No system is declared: the file's systems list is empty."
    _change(workflow, systems=[{"name": "CRM", "direction": "both", "fields": ["customer.email"]}])
    check = _check(workflow, 1)
    assert not check.passed
    assert check.detail == "The system CRM names customer.email, which has no field policy."


def test_check_2_fails_for_an_assist_lane_workflow_that_may_change_records_or_a_write_lane_without_approvers():
    workflow = _change(ready_workflow().workflow, lane=Lane.ASSIST)
    check = _check(workflow, 2)
    assert not check.passed
    assert "assist lane but may change customer.shipping_address" in check.detail
    assert "assist lane but may update records" in check.detail
    _change(workflow, lane=Lane.WRITE, approver_group=None)
    assert _check(workflow, 2).detail == "It is in the write lane but names no approver group."


def test_check_3_needs_a_second_owner_other_than_each_rules_owner_and_a_rule_for_what_is_stored():
    on_call = ready_workflow()
    workflow = _change(on_call.workflow, retention_co_owner=None)
    assert _check(workflow, 3).detail == "The rules have no second owner (retention_co_owner)."
    _change(workflow, retention_co_owner=on_call.owner)
    same_owner = "The second owner also owns prompt/live: two different people must own each rule."
    assert _check(workflow, 3).detail == same_owner
    _change(workflow, retention_co_owner=UserFactory(username="legal"))
    Artifact.objects.create(
        workflow_id=workflow.pk,
        workflow_slug=workflow.slug,
        rule_id=999,
        kind="output",
        bucket="training",
        sha256="0" * 64,
        size=3,
        expires_at=timezone.now() + timedelta(days=1),
    )
    check = _check(workflow, 3)
    assert not check.passed and check.detail == "Output/training is stored with no rule."


def test_check_3_passes_for_a_workflow_that_keeps_nothing():
    workflow = ready_workflow().workflow
    workflow.retention_rules.update(window=timedelta(0))
    _change(workflow, retention_co_owner=None)
    check = _check(workflow, 3)
    assert check.passed and check.detail.startswith("It stores no artifacts")


def test_check_4_names_the_group_with_nobody_active_and_the_hours_nobody_covers():
    on_call = ready_workflow()
    workflow = _change(on_call.workflow, override_after_hours_group=None)
    assert _check(workflow, 4).detail == (
        "There is no after-hours override group: nobody is on override duty outside "
        "mon, tue, wed, thu, fri 08:00–18:00 (Europe/London)."
    )
    _change(workflow, override_after_hours_group=on_call.ops_managers)
    assert _check(workflow, 4).passed
    on_call.lead.is_active = False
    on_call.lead.save()
    detail = _check(workflow, 4).detail
    assert detail.startswith("Nobody active is in the approver group support-leads")
    assert "nobody active is in the day override group support-leads: mon, tue" in detail


def test_check_5_fails_when_an_outside_service_sees_a_field_the_workflow_may_not_read():
    workflow = ready_workflow().workflow
    workflow.policies.filter(field="full_name").delete()
    check = _check(workflow, 5)
    assert not check.passed
    assert check.detail == "Hosted model API sees customer.full_name, which the workflow may not read."


def test_check_6_needs_a_passed_drill_of_this_workflow_in_30_days_within_its_rollback_target():
    workflow = ready_workflow().workflow
    RollbackDrill.objects.all().delete()
    assert _check(workflow, 6).detail == (
        "No rollback drill of address-updates finished in the last 30 days; "
        "run manage.py rollback_drill --workflow address-updates."
    )
    rollback_drill(workflow, days_ago=31)
    assert not _check(workflow, 6).passed
    rollback_drill(workflow, stop=1.0, undo=620.0, check=2.0)
    assert "took 623.0 s to stop, undo and check; the target is 10m" in _check(workflow, 6).detail
    rollback_drill(workflow, days_ago=0.5, apply=3.0, undo=4.0, verify=1.0)
    assert "did not time the stop, the undo and the check separately" in _check(workflow, 6).detail
    rollback_drill(workflow, days_ago=0.1, passed=False)
    check = _check(workflow, 6)
    assert "failed: CUS-1 still holds the drill's address" in check.detail
    assert check.evidence[0].text.startswith("Rollback drill of address-updates")
    _change(workflow, rollback_target=timedelta(minutes=11))
    assert _check(workflow, 6).passed


def test_check_7_needs_a_passed_trace_drill_in_the_last_30_days():
    workflow = ready_workflow().workflow
    workflow.trace_drills.all().delete()
    assert _check(workflow, 7).detail == "No trace drill finished in the last 30 days."
    trace_drill(workflow, days_ago=40)
    trace_drill(workflow, passed=False)
    assert _check(workflow, 7).detail.startswith("The last trace drill, of ")
    assert not _check(workflow, 7).passed
    trace_drill(workflow, days_ago=29)
    assert _check(workflow, 7).passed


def test_an_assist_lane_workflow_needs_no_drill_since_it_changes_no_record():
    workflow = ready_workflow().workflow
    RollbackDrill.objects.all().delete()
    workflow.trace_drills.all().delete()
    assert not _check(workflow, 6).passed and not _check(workflow, 7).passed
    _change(workflow, lane=Lane.ASSIST)
    assert _check(workflow, 6).passed and _check(workflow, 7).passed
    assert (
        _check(workflow, 6).detail == "It is in the assist lane and changes no record: there is nothing to roll back."
    )
    assert _check(workflow, 7).detail == "It is in the assist lane and changes no record: there is no change to trace."


def test_check_8_needs_a_review_found_ready_and_signed_off_in_the_last_90_days():
    workflow = ready_workflow().workflow
    workflow.readiness_reviews.all().delete()
    five_step_review(workflow, days_ago=95)
    assert _check(workflow, 8).detail == "No five-step review was signed off in the last 90 days."
    five_step_review(workflow, days_ago=3, decision="not_ready")
    assert "found it not ready" in _check(workflow, 8).detail
    five_step_review(workflow, days_ago=89)
    assert _check(workflow, 8).passed


def test_check_9_counts_the_canary_days():
    workflow = ready_workflow(canary_days_ago=1).workflow
    check = _check(workflow, 9)
    assert not check.passed and "it has been in canary 1 d 0 h of 3 days" in check.detail
    _change(workflow, canary_days=1)
    assert _check(workflow, 9).passed
    _change(workflow, stage=Stage.SHADOW)
    assert _check(workflow, 9).detail == "It is in shadow, not canary: it must spend 1 days in canary first."


def test_check_9_fails_after_an_undo_job_an_undo_or_a_stop_since_it_entered_canary():
    on_call = ready_workflow()
    workflow = on_call.workflow
    UndoJob.objects.create(
        scope="workflow", workflow=workflow, since=timezone.now() - timedelta(days=1), reason="bad run", total=0
    )
    assert "an undo job over its changes was started" in _check(workflow, 9).detail
    UndoJob.objects.all().delete()
    Change.objects.create(
        record_type="customer",
        record_id="CUS-1",
        action="revert",
        before={},
        after={},
        version_before=2,
        version_after=3,
        workflow_slug=workflow.slug,
        applied_by="lead",
    )
    assert _check(workflow, 9).passed  # one change undone on its own is not an undo job
    batch = BatchFactory(workflow=workflow)
    StopSwitch.objects.create(
        scope="batch", target=f"batch:{batch.pk}", batch=batch, reason="odd output", engaged_by_label="lead"
    )
    assert _check(workflow, 9).passed  # a pipeline halting its own batch is not a stop of the workflow
    StopSwitch.objects.create(
        scope="workflow",
        target=f"workflow:{workflow.pk}",
        workflow=workflow,
        reason="odd output",
        engaged_by_label="lead",
    )
    assert "a stop switch over the whole workflow was engaged" in _check(workflow, 9).detail


def test_check_9_leaves_out_the_rollback_drills_own_batch_and_undo_job():
    workflow = ready_workflow().workflow
    batch = BatchFactory(workflow=workflow)
    job = UndoJob.objects.create(scope="batch", batch=batch, reason="drill", total=0)
    StopSwitch.objects.create(
        scope="batch", target=f"batch:{batch.pk}", batch=batch, reason="drill", engaged_by_label="rollback-drill"
    )
    drill = rollback_drill(workflow)
    assert not _check(workflow, 9).passed
    drill.batch_id, drill.undo_job_id = batch.pk, job.pk
    drill.save()
    assert _check(workflow, 9).passed


def test_the_checks_of_many_workflows_take_a_fixed_number_of_queries(django_assert_num_queries):
    first = ready_workflow(slug="first").workflow
    with CaptureQueriesContext(connection) as one:
        readiness_by_workflow([first])
    others = []
    for n in range(3):
        workflow = Workflow.objects.get(pk=first.pk)
        workflow.pk, workflow.slug = None, f"more-{n}"
        workflow.save()
        FieldPolicyFactory(workflow=workflow, field="full_name", access="read")
        rollback_drill(workflow)
        trace_drill(workflow)
        five_step_review(workflow)
        others.append(workflow)
    with django_assert_num_queries(len(one)):
        found = readiness_by_workflow([first, *others])
    assert [found[w.pk].checks[0].passed for w in others] == [False, False, False]
    assert all(found[w.pk].checks[5].passed for w in [first, *others])
