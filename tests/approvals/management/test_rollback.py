"""`manage.py rollback` and `manage.py rollback_drill`."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from approvals.applying.services import proposals_apply
from approvals.models import (
    FollowUp,
    FollowUpStatus,
    Proposal,
    ProposalStatus,
    RollbackDrill,
    StopSwitch,
    UndoJob,
    UndoJobStatus,
)
from audit.models import AuditEvent
from records.models import Change, ChangeAction, Customer
from records.services.changes import ChangeOrigin, change_update
from records.store import RecordRef
from tests.helpers.factories import BatchFactory, ProposalFactory, UserFactory, WorkflowFactory

PERSON = ChangeOrigin(applied_by="dana")
EMAIL = {"kind": "email_customer", "params": {"template": "address-confirmed"}}


def run(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("rollback", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def applied_batch(size: int, *, workflow=None, prompt_version="address-update@7"):  # type: ignore[no-untyped-def]
    batch = BatchFactory(workflow=workflow or WorkflowFactory())
    proposals = [
        ProposalFactory(
            workflow=batch.workflow,
            batch=batch,
            status=ProposalStatus.APPROVED,
            prompt_version=prompt_version,
            follow_ups=[EMAIL],
        )
        for _ in range(size)
    ]
    proposals_apply(proposal_ids=[p.pk for p in proposals], worker="w/1")
    return batch, proposals


def typed_over(proposal: Proposal) -> None:
    change_update(
        ref=RecordRef("customer", proposal.record_id), values={"shipping_address": "9 Typed Street"}, origin=PERSON
    )


def test_one_change_dry_run_then_undo(db):
    _, [proposal] = applied_batch(1)
    change = Change.objects.get(proposal_id=proposal.pk)
    code, out, _ = run("--change", str(change.id), "--dry-run")
    assert code == 0
    assert "restore  customer" in out and "shipping_address: before '4 Old Mill Lane, Leith'" in out
    assert not Change.objects.filter(action=ChangeAction.REVERT).exists()

    code, out, _ = run("--change", str(change.id), "--reason", "wrong address")
    assert code == 0
    assert f"Undone: change {change.id}" in out
    assert "shipping_address restored to '4 Old Mill Lane, Leith'" in out
    assert "follow-up cancelled: email_customer address-confirmed" in out
    assert Customer.objects.get(record_id=proposal.record_id).shipping_address == "4 Old Mill Lane, Leith"
    assert AuditEvent.objects.get(action="change.reverted").actor_label.startswith("cli:")


def test_one_change_with_a_conflict_prints_it_and_exits_1(db):
    _, [proposal] = applied_batch(1)
    typed_over(proposal)
    change = Change.objects.get(proposal_id=proposal.pk)
    code, out, err = run("--change", str(change.id))
    assert code == 1
    assert (
        "CONFLICT customer "
        f"{proposal.record_id} shipping_address: before '4 Old Mill Lane, Leith', "
        "we wrote '12 Harbour Road, Leith', now '9 Typed Street'"
    ) in out
    assert "Nothing was written" in err
    assert Customer.objects.get(record_id=proposal.record_id).shipping_address == "9 Typed Street"


def test_a_bad_change_id_is_refused_by_name(db):
    with pytest.raises(CommandError, match="--change: 'nope' is not a change id"):
        run("--change", "nope")


def test_a_batch_dry_run_counts_and_exits_1_on_conflicts_then_the_undo_leaves_them(db):
    batch, proposals = applied_batch(3)
    typed_over(proposals[1])
    code, out, _ = run("--batch", str(batch.pk), "--dry-run")
    assert code == 1
    assert "3 change(s) to undo, newest first (0 already undone)" in out
    assert "2 would be restored, 1 conflict(s)" in out
    assert "follow-ups: 3 would be cancelled, 0 sent — cannot be retracted" in out
    assert f"CONFLICT customer {proposals[1].record_id} shipping_address" in out
    assert not UndoJob.objects.exists() and not StopSwitch.objects.exists()

    code, out, _ = run("--batch", str(batch.pk), "--reason", "bad sweep")
    assert code == 1
    job = UndoJob.objects.get()
    assert (job.status, job.reverted, job.conflicts) == (UndoJobStatus.DONE, 2, 1)
    assert f"Batch {batch.pk} is stopped" in out
    assert f"Batch {batch.pk} stays stopped" in out and "1 follow-up not yet sent would go through" in out
    assert "undo job" in out.lower() and "2 undone, 1 conflict(s)" in out
    assert f"CONFLICT customer {proposals[1].record_id} shipping_address" in out
    assert StopSwitch.objects.filter(batch=batch, released_at__isnull=True).exists()
    assert FollowUp.objects.filter(status=FollowUpStatus.CANCELLED).count() == 2


def test_a_clean_batch_undo_exits_0(db):
    batch, _ = applied_batch(2)
    code, out, _ = run("--batch", str(batch.pk), "--reason", "bad sweep")
    assert code == 0 and "2 undone, 0 conflict(s)" in out


def test_a_bulk_undo_needs_a_reason(db):
    batch, _ = applied_batch(1)
    with pytest.raises(CommandError, match="say why"):
        run("--batch", str(batch.pk))
    assert not UndoJob.objects.exists()
    assert not Change.objects.filter(action=ChangeAction.REVERT).exists()


def test_a_workflow_since_a_window_and_a_prompt_version(db):
    workflow = WorkflowFactory(slug="address-updates")
    _, old = applied_batch(1, workflow=workflow)
    Change.objects.filter(proposal_id=old[0].pk).update(applied_at=timezone.now() - timedelta(hours=5))
    _, recent = applied_batch(1, workflow=workflow, prompt_version="address-update@8")
    with pytest.raises(CommandError, match="--workflow needs --since"):
        run("--workflow", "address-updates")
    with pytest.raises(CommandError, match="--since: 'yesterday' is neither"):
        run("--workflow", "address-updates", "--since", "yesterday")
    code, out, _ = run("--workflow", "address-updates", "--since", "2h", "--dry-run")
    assert code == 0 and "1 change(s) to undo" in out
    code, out, _ = run("--prompt-version", "address-update@7", "--reason", "prompt 7 was wrong")
    assert code == 0
    assert Proposal.objects.get(pk=old[0].pk).status == ProposalStatus.REVERTED
    assert Proposal.objects.get(pk=recent[0].pk).status == ProposalStatus.APPLIED


def test_the_person_named_needs_the_right(db):
    batch, _ = applied_batch(1)
    UserFactory(username="agent")
    with pytest.raises(CommandError, match="you may not undo changes of"):
        run("--batch", str(batch.pk), "--reason", "not mine", "--user", "agent")
    assert not UndoJob.objects.exists()
    assert not Change.objects.filter(action=ChangeAction.REVERT).exists()


def test_the_drill_passes_prints_its_timings_and_is_shown_on_the_workflows_page(db, client):
    out = StringIO()
    call_command("rollback_drill", "--records", "12", stdout=out)
    text = out.getvalue()
    assert "PASSED" in text
    for phase in ("setup", "submit", "apply", "dry run", "undo", "verify"):
        assert f"  {phase}" in text
    assert "byte for byte as before" in text
    drill = RollbackDrill.objects.get()
    assert drill.passed and drill.records == 12 and drill.changes == 12 and not drill.problems
    assert set(drill.timings) == {"setup", "submit", "apply", "dry run", "undo", "verify"}
    assert not StopSwitch.objects.filter(released_at__isnull=True).exists()
    assert AuditEvent.objects.filter(action="drill.completed", reason="passed").exists()
    approvers = AuditEvent.objects.filter(action="proposal.approved").values_list("approver_label", flat=True)
    assert set(approvers) == {"Rollback drill"}  # named as a decision names its approver
    assert set(Proposal.objects.values_list("status", flat=True)) == {ProposalStatus.REVERTED}
    assert Change.objects.filter(action="merge").exists() and Change.objects.filter(action="archive").exists()

    ops = UserFactory(username="ops")
    from django.contrib.auth.models import Group

    ops.groups.add(Group.objects.get_or_create(name="ops-managers")[0])
    client.force_login(ops)
    html = client.get(reverse("workflow-list")).content.decode()
    assert "passed</strong>" in html and "12 records" in html


def test_a_failing_drill_exits_1_and_is_stored_as_failed(db, monkeypatch):
    from approvals.undo import drill as drill_service

    def nothing_undone(*, job_id: int, worker: str):  # type: ignore[no-untyped-def]
        return UndoJob.objects.get(pk=job_id)

    monkeypatch.setattr(drill_service, "undo_job_run", nothing_undone)
    with pytest.raises(SystemExit) as exit_:
        call_command("rollback_drill", "--records", "4", stdout=StringIO())
    assert exit_.value.code == 1
    drill = RollbackDrill.objects.get()
    assert not drill.passed
    assert any("not byte for byte" in problem for problem in drill.problems)
