"""The rollback drill as a workflow: its throwaway records written and rolled back as a person would
(stop, undo, check), each timed, and passed only within the workflow's rollback target."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from approvals.models import Batch, Proposal, ProposalStatus, RollbackDrill, Stage, StopSwitch
from approvals.workflows.rollout import canary_writes_today
from audit.models import AuditEvent
from records.models import Change, ChangeAction, Customer
from tests.helpers.factories import FieldPolicyFactory, UserFactory, WorkflowFactory


@pytest.fixture
def workflow(db):  # type: ignore[no-untyped-def]
    workflow = WorkflowFactory(slug="address-updates", owner=UserFactory(username="owner"), canary_daily_limit=3)
    FieldPolicyFactory(workflow=workflow, field="full_name", access="read")
    FieldPolicyFactory(workflow=workflow, field="shipping_address", access="suggest")
    FieldPolicyFactory(workflow=workflow, field="priority", access="write")
    return workflow


def drill(*args: str) -> str:
    out = StringIO()
    call_command("rollback_drill", *args, stdout=out)
    return out.getvalue()


def test_a_drill_as_a_workflow_times_stop_undo_and_check_and_passes_within_its_target(workflow, client):
    text = drill("--workflow", "address-updates", "--records", "5")
    assert "throwaway customer records as workflow address-updates" in text
    assert "PASSED" in text and "of the 600 s target (stop + undo + check)" in text
    run = RollbackDrill.objects.get()
    assert run.passed and run.workflow_slug == "address-updates" and not run.problems
    assert set(run.timings) == {"setup", "submit", "apply", "stop", "undo", "check"}
    assert run.batch_id is not None
    batch = Batch.objects.get(pk=run.batch_id)
    assert batch.workflow == workflow and batch.name == f"rollback drill {run.pk}"
    proposals = Proposal.objects.filter(batch=batch)
    assert {(p.status, p.reason) for p in proposals} == {(ProposalStatus.REVERTED, "rollback drill")}
    changed = Change.objects.filter(batch_id=batch.pk).exclude(action=ChangeAction.REVERT)
    assert {tuple(sorted(c.after)) for c in changed} == {("priority", "shipping_address")}
    assert not StopSwitch.objects.filter(released_at__isnull=True).exists()
    stops = AuditEvent.objects.filter(action__in=["stop.engaged", "stop.released"], batch_id=batch.pk)
    assert [e.action for e in stops.order_by("id")] == ["stop.engaged", "stop.released"]
    completed = AuditEvent.objects.get(action="drill.completed")
    assert (completed.workflow_slug, completed.reason) == ("address-updates", "passed")
    records = Customer.objects.filter(record_id__in=proposals.values("record_id"))
    assert {(c.shipping_address, c.priority) for c in records} == {  # back as they were
        (f"Drill {n} shipping address before", "low") for n in range(5)
    }

    client.force_login(workflow.owner)
    html = client.get(reverse("rollback-drill", args=[run.pk])).content.decode()
    assert "within the rollback target of address-updates" in html
    for phase in ("stop", "undo", "check"):
        assert f"<td>{phase}</td>" in html
    client.force_login(UserFactory())
    assert client.get(reverse("rollback-drill", args=[run.pk])).status_code == 404


def test_a_drill_over_the_workflows_target_fails_and_says_so(workflow, client):
    workflow.rollback_target = timedelta(0)
    workflow.save(update_fields=["rollback_target"])
    with pytest.raises(SystemExit) as exit_:
        drill("--workflow", "address-updates", "--records", "3")
    assert exit_.value.code == 1
    run = RollbackDrill.objects.get()
    assert not run.passed
    assert len(run.problems) == 1 and "over the rollback target of address-updates, 0 s" in run.problems[0]
    assert {"stop", "undo", "check"} <= set(run.timings)
    client.force_login(workflow.owner)
    html = client.get(reverse("rollback-drill", args=[run.pk])).content.decode()
    assert "over the rollback target of address-updates" in html and "failed" in html


def test_a_canary_workflows_drill_takes_nothing_of_its_cap(workflow):
    workflow.stage = Stage.CANARY
    workflow.save(update_fields=["stage"])
    drill("--workflow", "address-updates", "--records", "4")  # more than the cap of 3
    assert RollbackDrill.objects.get().passed
    assert canary_writes_today(workflow_slugs=["address-updates"]) == {}


def test_a_workflow_the_drill_cannot_run_as_is_refused_before_anything_is_written(workflow):
    workflow.stage = Stage.SHADOW
    workflow.save(update_fields=["stage"])
    with pytest.raises(CommandError, match="address-updates is in shadow: it does not write"):
        drill("--workflow", "address-updates")
    with pytest.raises(CommandError, match="--workflow: no workflow 'nope'"):
        drill("--workflow", "nope")
    reader = WorkflowFactory(slug="reader")
    FieldPolicyFactory(workflow=reader, field="full_name", access="read")
    with pytest.raises(CommandError, match="workflow reader may suggest or write no field the drill can change"):
        drill("--workflow", "reader")
    assert not RollbackDrill.objects.exists() and not Customer.objects.exists()
