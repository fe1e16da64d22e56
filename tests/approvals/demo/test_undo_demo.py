from django.core.management import call_command

from approvals.models import Batch, FollowUp, FollowUpStatus, UndoScope
from approvals.undo.selectors import UndoSelection, undo_plan
from approvals.undo.services import undo_job_run, undo_job_start
from audit.services import Actor
from records.models import Customer


def test_the_demo_has_a_bad_batch_to_undo_with_two_hand_corrected_records(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo")
    batch = Batch.objects.get(run_id="run-demo-sweep-0412")
    plan = undo_plan(selection=UndoSelection(scope=UndoScope.BATCH, batch=batch))
    assert (plan.total, plan.would_revert, len(plan.conflicts)) == (40, 38, 2)
    assert len(plan.followups.to_cancel) == 40
    corrected = {result.change.record_id for result in plan.conflicts}
    before = {c.record_id: c.shipping_address for c in Customer.objects.filter(record_id__in=corrected)}

    job = undo_job_start(
        selection=UndoSelection(scope=UndoScope.BATCH, batch=batch), actor=Actor.system("test"), reason="prompt 6"
    )
    job = undo_job_run(job_id=job.pk, worker="test")
    assert (job.reverted, job.conflicts) == (38, 2)
    assert {c.record_id: c.shipping_address for c in Customer.objects.filter(record_id__in=corrected)} == before
    assert FollowUp.objects.filter(proposal__batch=batch, status=FollowUpStatus.HELD).count() == 2
    call_command("verify_audit")
