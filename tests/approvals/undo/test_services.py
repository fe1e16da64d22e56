"""Undo in the approvals layer: proposals and follow-ups follow the change; bulk undo as a job."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core import mail
from django.utils import timezone
from guardian.shortcuts import assign_perm

from approvals.applying.followups import followups_run_due
from approvals.applying.services import Outcome, proposal_apply, proposals_apply
from approvals.models import (
    FollowUp,
    FollowUpStatus,
    Proposal,
    ProposalStatus,
    StopSwitch,
    UndoItemOutcome,
    UndoJobStatus,
    UndoScope,
)
from approvals.undo.rights import undo_rights_for_user
from approvals.undo.selectors import UndoSelection, undo_plan
from approvals.undo.services import undo_change, undo_job_cancel, undo_job_run, undo_job_start
from audit.models import AuditEvent
from audit.services import Actor, audit_verify_chain
from core.errors import InvalidTransition, NotAllowed, ValidationFailed
from records.models import Change, ChangeAction, Customer
from records.services.changes import ChangeOrigin, change_update
from records.services.revert import RevertConflict
from records.store import RecordRef
from tests.helpers.factories import BatchFactory, CustomerFactory, ProposalFactory, UserFactory, WorkflowFactory

WORKER = "worker@test/1"
EMAIL = {"kind": "email_customer", "params": {"template": "address-confirmed"}}
PERSON = ChangeOrigin(applied_by="dana")


def applied(**kwargs):  # type: ignore[no-untyped-def]
    proposal = ProposalFactory(status=ProposalStatus.APPROVED, **kwargs)
    assert proposal_apply(proposal_id=proposal.pk, worker=WORKER).outcome == Outcome.APPLIED
    proposal.refresh_from_db()
    return proposal


def ops_user():  # type: ignore[no-untyped-def]
    user = UserFactory(username="ops")
    user.groups.add(Group.objects.get_or_create(name="ops-managers")[0])
    return user


def applied_batch(size: int, *, follow_ups=None, workflow=None):  # type: ignore[no-untyped-def]
    batch = BatchFactory(workflow=workflow or WorkflowFactory(), expected_size=size)
    customers = [CustomerFactory(shipping_address="4 Old Mill Lane, Leith") for _ in range(size)]
    proposals = [
        ProposalFactory(
            workflow=batch.workflow,
            batch=batch,
            record_id=customer.record_id,
            changes={"shipping_address": f"{n} Harbour Road"},
            status=ProposalStatus.APPROVED,
            follow_ups=follow_ups or [],
        )
        for n, customer in enumerate(customers)
    ]
    results = proposals_apply(proposal_ids=[p.pk for p in proposals], worker=WORKER)
    assert {r.outcome for r in results} == {Outcome.APPLIED}
    return batch, customers, proposals


def test_undoing_a_change_reverts_its_proposal_and_cancels_held_follow_ups(db):
    ops = ops_user()
    customer = CustomerFactory(shipping_address="4 Old Mill Lane, Leith")
    webhook = {"kind": "webhook", "params": {"url": "http://127.0.0.1:18799/hook"}}
    proposal = applied(record_id=customer.record_id, follow_ups=[EMAIL, webhook])
    change = Change.objects.get(pk=proposal.change_id)
    FollowUp.objects.filter(change_id=change.id, position=0).update(status=FollowUpStatus.SENT)

    result = undo_change(change=change, actor=Actor.user(ops), user=ops, reason="wrong address source")

    customer.refresh_from_db()
    assert customer.shipping_address == "4 Old Mill Lane, Leith"
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.REVERTED
    assert result.proposal_status == ProposalStatus.REVERTED
    assert [row.position for row in result.cancelled] == [1]
    assert [row.position for row in result.not_retractable] == [0]
    assert FollowUp.objects.get(change_id=change.id, position=1).status == FollowUpStatus.CANCELLED
    assert FollowUp.objects.get(change_id=change.id, position=0).status == FollowUpStatus.SENT
    actions = list(
        AuditEvent.objects.filter(proposal_id=proposal.pk).order_by("id").values_list("action", "actor_label")
    )
    assert actions[-3:] == [("change.reverted", "ops"), ("proposal.reverted", "ops"), ("followup.cancelled", "ops")]
    assert AuditEvent.objects.get(action="proposal.reverted").reason == "wrong address source"
    assert audit_verify_chain()[1] is None


def test_a_follow_up_cancelled_by_an_undo_never_runs_and_the_trail_says_why(db):
    ops = ops_user()
    proposal = applied(follow_ups=[EMAIL])
    change = Change.objects.get(pk=proposal.change_id)

    undo_change(change=change, actor=Actor.user(ops), user=ops, reason="wrong address source")

    event = AuditEvent.objects.get(action="followup.cancelled")
    assert (event.change_id, event.reason, event.details["template"]) == (
        change.id,
        "wrong address source",
        "address-confirmed",
    )
    # named on the trail as every event about the proposal names it
    assert (event.proposal_id, event.model_name, event.prompt_version) == (proposal.pk, "gpt-x", "address-update@7")
    with time_machine.travel(timezone.now() + timedelta(hours=1), tick=False):
        assert followups_run_due(worker=WORKER) == 0
    assert mail.outbox == []
    assert FollowUp.objects.get().status == FollowUpStatus.CANCELLED


def test_undo_of_an_undo_applies_the_proposal_again_and_leaves_follow_ups_cancelled(db):
    ops = ops_user()
    customer = CustomerFactory(shipping_address="4 Old Mill Lane, Leith")
    proposal = applied(record_id=customer.record_id, follow_ups=[EMAIL])
    change = Change.objects.get(pk=proposal.change_id)
    first = undo_change(change=change, actor=Actor.user(ops), user=ops)

    redo = undo_change(change=first.revert, actor=Actor.user(ops), user=ops)

    customer.refresh_from_db()
    assert customer.shipping_address == "12 Harbour Road, Leith"
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.APPLIED
    assert redo.proposal_status == ProposalStatus.APPLIED and redo.cancelled == []
    assert FollowUp.objects.get(change_id=change.id).status == FollowUpStatus.CANCELLED
    assert AuditEvent.objects.filter(action="proposal.reapplied", proposal_id=proposal.pk).count() == 1

    again = undo_change(change=redo.revert, actor=Actor.user(ops), user=ops)
    assert again.proposal_status == ProposalStatus.REVERTED
    assert Customer.objects.get(pk=customer.pk).shipping_address == "4 Old Mill Lane, Leith"


def test_a_conflict_leaves_the_record_and_the_proposal_alone(db):
    ops = ops_user()
    customer = CustomerFactory(shipping_address="4 Old Mill Lane, Leith")
    proposal = applied(record_id=customer.record_id, follow_ups=[EMAIL])
    change_update(ref=RecordRef("customer", customer.record_id), values={"shipping_address": "typed"}, origin=PERSON)

    with pytest.raises(RevertConflict) as refused:
        undo_change(change=Change.objects.get(pk=proposal.change_id), actor=Actor.user(ops), user=ops)

    assert refused.value.extra["conflicts"][0]["now"] == "typed"
    assert Customer.objects.get(pk=customer.pk).shipping_address == "typed"
    assert Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.APPLIED
    assert FollowUp.objects.get().status == FollowUpStatus.HELD


def test_who_may_undo(db):
    workflow = WorkflowFactory()
    proposal = applied(workflow=workflow)
    change = Change.objects.get(pk=proposal.change_id)
    stranger, lead = UserFactory(), UserFactory()
    assign_perm("rollback_workflow", lead, workflow)
    assert not undo_rights_for_user(user=stranger).any
    assert undo_rights_for_user(user=lead).may_undo(workflow_slug=workflow.slug)
    assert undo_rights_for_user(user=ops_user()).everything

    with pytest.raises(NotAllowed, match=f"you may not undo changes of {workflow.slug}"):
        undo_change(change=change, actor=Actor.user(stranger), user=stranger)
    assert Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.APPLIED
    undo_change(change=change, actor=Actor.user(lead), user=lead)
    assert Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.REVERTED


def test_a_batch_undo_with_a_conflicting_record_in_the_middle(db):
    ops = ops_user()
    batch, customers, proposals = applied_batch(5, follow_ups=[EMAIL])
    middle = customers[2]
    change_update(ref=RecordRef("customer", middle.record_id), values={"shipping_address": "typed"}, origin=PERSON)
    selection = UndoSelection(scope=UndoScope.BATCH, batch=batch)

    plan = undo_plan(selection=selection)
    assert (plan.total, plan.would_revert, len(plan.conflicts)) == (5, 4, 1)
    [conflict] = plan.conflicts
    assert conflict.change.record_id == middle.record_id
    assert [(p.before, p.written, p.now) for p in conflict.conflicts] == [
        ("4 Old Mill Lane, Leith", "2 Harbour Road", "typed")
    ]
    assert len(plan.followups.to_cancel) == 5 and plan.followups.not_retractable == []
    assert not Change.objects.filter(action=ChangeAction.REVERT).exists()

    job = undo_job_start(selection=selection, actor=Actor.user(ops), user=ops, reason="bad prompt", queue=False)
    switch = StopSwitch.objects.get(target=f"batch:{batch.pk}", released_at__isnull=True)
    assert job.stop == switch and "undoing the batch: bad prompt" in switch.reason
    assert [item.record_id for item in job.items.order_by("position")] == [c.record_id for c in reversed(customers)]

    job = undo_job_run(job_id=job.pk, worker=WORKER, chunk_size=2)

    assert (job.status, job.total, job.done, job.reverted, job.conflicts) == (UndoJobStatus.DONE, 5, 5, 4, 1)
    assert job.followups_cancelled == 4
    addresses = {c.record_id: c.shipping_address for c in Customer.objects.filter(pk__in=[c.pk for c in customers])}
    assert addresses == {c.record_id: ("typed" if c == middle else "4 Old Mill Lane, Leith") for c in customers}
    statuses = {p.record_id: p.status for p in Proposal.objects.filter(batch=batch)}
    assert statuses[middle.record_id] == ProposalStatus.APPLIED
    assert {s for r, s in statuses.items() if r != middle.record_id} == {ProposalStatus.REVERTED}
    item = job.items.get(outcome=UndoItemOutcome.CONFLICT)
    assert item.record_id == middle.record_id
    assert item.detail["conflicts"][0]["now"] == "typed"
    held = FollowUp.objects.filter(proposal__record_id=middle.record_id).get()
    assert held.status == FollowUpStatus.HELD
    finished = AuditEvent.objects.get(action="undo.finished")
    assert (finished.batch_id, finished.details["reverted"], finished.details["conflicts"]) == (batch.pk, 4, 1)
    assert audit_verify_chain()[1] is None


def test_changes_to_one_record_in_the_set_are_undone_newest_first(db):
    batch = BatchFactory()
    customer = CustomerFactory(shipping_address="first")
    for before, after in (("first", "second"), ("second", "third")):
        proposal = ProposalFactory(
            workflow=batch.workflow,
            batch=batch,
            record_id=customer.record_id,
            changes={"shipping_address": after},
            base={"shipping_address": before},
            status=ProposalStatus.APPROVED,
        )
        assert proposal_apply(proposal_id=proposal.pk, worker=WORKER).outcome == Outcome.APPLIED
    job = undo_job_start(
        selection=UndoSelection(scope=UndoScope.BATCH, batch=batch),
        actor=Actor.system("ops"),
        reason="both wrong",
        queue=False,
    )
    job = undo_job_run(job_id=job.pk, worker=WORKER)
    assert (job.reverted, job.conflicts) == (2, 0)
    assert Customer.objects.get(pk=customer.pk).shipping_address == "first"


def test_a_workflow_since_a_time_and_a_prompt_version_within_a_window(db):
    workflow = WorkflowFactory()
    old = applied(workflow=workflow, prompt_version="p@1")
    Change.objects.filter(pk=old.change_id).update(applied_at=timezone.now() - timedelta(hours=3))
    recent = applied(workflow=workflow, prompt_version="p@1")
    other_version = applied(workflow=workflow, prompt_version="p@2")
    since = timezone.now() - timedelta(hours=1)

    by_workflow = undo_plan(selection=UndoSelection(scope=UndoScope.WORKFLOW, workflow=workflow, since=since))
    assert {c.proposal_id for c in by_workflow.changes} == {recent.pk, other_version.pk}
    by_version = undo_plan(selection=UndoSelection(scope=UndoScope.PROMPT_VERSION, prompt_version="p@1"))
    assert {c.proposal_id for c in by_version.changes} == {old.pk, recent.pk}
    windowed = UndoSelection(scope=UndoScope.PROMPT_VERSION, prompt_version="p@1", since=since)
    assert {c.proposal_id for c in undo_plan(selection=windowed).changes} == {recent.pk}
    until = UndoSelection(scope=UndoScope.PROMPT_VERSION, prompt_version="p@1", until=since)
    assert {c.proposal_id for c in undo_plan(selection=until).changes} == {old.pk}

    job = undo_job_start(selection=windowed, actor=Actor.system("ops"), reason="p@1 was wrong", queue=False)
    assert job.stop is None
    undo_job_run(job_id=job.pk, worker=WORKER)
    assert Proposal.objects.get(pk=recent.pk).status == ProposalStatus.REVERTED
    assert Proposal.objects.get(pk=old.pk).status == ProposalStatus.APPLIED
    with pytest.raises(InvalidTransition, match=r"nothing to undo in prompt version p@1 .*\(1 already undone\)"):
        undo_job_start(selection=windowed, actor=Actor.system("ops"), reason="again", queue=False)


def test_a_bulk_undo_needs_a_reason_and_the_right(db):
    batch, _, _ = applied_batch(1)
    selection = UndoSelection(scope=UndoScope.BATCH, batch=batch)
    with pytest.raises(ValidationFailed, match="reason"):
        undo_job_start(selection=selection, actor=Actor.system("ops"), reason=" ", queue=False)
    stranger = UserFactory()
    with pytest.raises(NotAllowed):
        undo_job_start(selection=selection, actor=Actor.user(stranger), user=stranger, reason="not mine", queue=False)
    assert not StopSwitch.objects.exists()


def test_a_queued_job_cancelled_undoes_nothing(db):
    ops = ops_user()
    batch, customers, _ = applied_batch(3)
    job = undo_job_start(
        selection=UndoSelection(scope=UndoScope.BATCH, batch=batch), actor=Actor.user(ops), user=ops, reason="x y z"
    )
    job = undo_job_cancel(job=job, actor=Actor.user(ops), user=ops)
    assert job.status == UndoJobStatus.CANCELLED
    assert undo_job_run(job_id=job.pk, worker=WORKER).done == 0
    assert not Change.objects.filter(action=ChangeAction.REVERT).exists()
    assert AuditEvent.objects.filter(action="undo.cancelled").count() == 1
    with pytest.raises(InvalidTransition):
        undo_job_cancel(job=job, actor=Actor.user(ops), user=ops)


def test_a_running_job_stops_after_the_chunk_in_flight_and_keeps_what_it_undid(db):
    ops = ops_user()
    batch, _, _ = applied_batch(6)
    job = undo_job_start(
        selection=UndoSelection(scope=UndoScope.BATCH, batch=batch), actor=Actor.user(ops), user=ops, reason="x y z"
    )

    def cancel_after_first_chunk(progress) -> None:  # type: ignore[no-untyped-def]
        if progress.done == 2:
            undo_job_cancel(job=progress, actor=Actor.user(ops), user=ops)

    job = undo_job_run(job_id=job.pk, worker=WORKER, chunk_size=2, on_progress=cancel_after_first_chunk)
    assert (job.status, job.done, job.reverted) == (UndoJobStatus.CANCELLED, 2, 2)
    assert Change.objects.filter(action=ChangeAction.REVERT).count() == 2
    assert job.items.filter(outcome=UndoItemOutcome.PENDING).count() == 4
    assert AuditEvent.objects.get(action="undo.cancelled").details["done"] == 2


def test_running_a_finished_job_again_undoes_nothing_twice(db):
    batch, _, _ = applied_batch(3)
    job = undo_job_start(
        selection=UndoSelection(scope=UndoScope.BATCH, batch=batch), actor=Actor.system("ops"), reason="x y z"
    )
    undo_job_run(job_id=job.pk, worker=WORKER)
    undo_job_run(job_id=job.pk, worker="another/2")
    assert Change.objects.filter(action=ChangeAction.REVERT).count() == 3


def test_a_batch_undo_stops_the_batch_first_so_nothing_new_of_it_lands(db):
    batch, customers, proposals = applied_batch(2)
    late = ProposalFactory(workflow=batch.workflow, batch=batch, status=ProposalStatus.APPROVED)
    job = undo_job_start(
        selection=UndoSelection(scope=UndoScope.BATCH, batch=batch), actor=Actor.system("ops"), reason="x y z"
    )
    assert job.total == 2
    [result] = proposals_apply(proposal_ids=[late.pk], worker=WORKER)
    assert result.outcome == Outcome.STOPPED
    assert Proposal.objects.get(pk=late.pk).status == ProposalStatus.APPROVED
    undo_job_run(job_id=job.pk, worker=WORKER)
    assert Change.objects.filter(batch_id=batch.pk, action=ChangeAction.REVERT).count() == 2


def test_an_already_engaged_batch_stop_is_kept_not_engaged_twice(db):
    from approvals.models import StopScope
    from approvals.stops.services import stop_engage

    batch, _, _ = applied_batch(1)
    switch = stop_engage(scope=StopScope.BATCH, batch=batch, reason="halted by the pipeline", actor=Actor.system("p"))
    job = undo_job_start(
        selection=UndoSelection(scope=UndoScope.BATCH, batch=batch), actor=Actor.system("ops"), reason="x y z"
    )
    assert job.stop is None  # not the job's to release
    assert StopSwitch.objects.count() == 1
    undo_job_run(job_id=job.pk, worker=WORKER)
    switch.refresh_from_db()
    assert switch.released_at is None
