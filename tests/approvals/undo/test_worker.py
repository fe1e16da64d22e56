"""Bulk undo run by a real Celery worker process (never eager mode)."""

import pytest
from django.db import transaction

from approvals.applying.services import proposals_apply
from approvals.models import Proposal, ProposalStatus, UndoJob, UndoJobStatus, UndoScope
from approvals.undo.selectors import UndoSelection
from approvals.undo.services import undo_job_start, undo_jobs_sweep
from audit.services import Actor, audit_verify_chain
from records.models import Change, ChangeAction, Customer
from records.services.changes import ChangeOrigin, change_update
from records.store import RecordRef
from tests.helpers.factories import BatchFactory, ProposalFactory
from tests.helpers.worker import wait_until

pytestmark = pytest.mark.worker


def applied_batch(size: int):  # type: ignore[no-untyped-def]
    batch = BatchFactory(expected_size=size)
    proposals = [
        ProposalFactory(workflow=batch.workflow, batch=batch, status=ProposalStatus.APPROVED) for _ in range(size)
    ]
    proposals_apply(proposal_ids=[p.pk for p in proposals], worker="setup/1")
    return batch, proposals


def start_job(batch) -> UndoJob:  # type: ignore[no-untyped-def]
    with transaction.atomic():
        return undo_job_start(
            selection=UndoSelection(scope=UndoScope.BATCH, batch=batch), actor=Actor.system("ops"), reason="bad sweep"
        )


def test_a_worker_undoes_a_batch_and_leaves_the_conflict(start_worker):
    batch, proposals = applied_batch(12)
    change_update(
        ref=RecordRef("customer", proposals[5].record_id),
        values={"shipping_address": "9 Typed Street"},
        origin=ChangeOrigin(applied_by="dana"),
    )
    start_worker(concurrency=1, env={"COUNTERSIGN_UNDO_CHUNK_SIZE": "4"})
    job = start_job(batch)
    job = wait_until(lambda: UndoJob.objects.filter(pk=job.pk, status=UndoJobStatus.DONE).first(), timeout=60)
    assert (job.total, job.done, job.reverted, job.conflicts) == (12, 12, 11, 1)
    assert job.worker.startswith("test-worker-1@")
    addresses = set(
        Customer.objects.filter(record_id__in=[p.record_id for p in proposals]).values_list(
            "shipping_address", flat=True
        )
    )
    assert addresses == {"4 Old Mill Lane, Leith", "9 Typed Street"}
    assert Proposal.objects.filter(batch=batch, status=ProposalStatus.REVERTED).count() == 11
    assert audit_verify_chain()[1] is None


@pytest.mark.postgres
@pytest.mark.redis
def test_kill_9_mid_job_then_the_sweeper_finishes_it_undoing_each_change_once(start_worker):
    batch, proposals = applied_batch(300)
    worker = start_worker(concurrency=1, env={"COUNTERSIGN_UNDO_CHUNK_SIZE": "3"})
    job = start_job(batch)
    wait_until(lambda: UndoJob.objects.get(pk=job.pk).done >= 30, timeout=60, interval=0.01)
    worker.kill()
    stopped_at = UndoJob.objects.get(pk=job.pk)
    assert stopped_at.status == UndoJobStatus.RUNNING and stopped_at.done < 300

    assert undo_jobs_sweep(stale_seconds=0) == [job.pk]
    start_worker(concurrency=2, env={"COUNTERSIGN_UNDO_CHUNK_SIZE": "3"})
    job = wait_until(lambda: UndoJob.objects.filter(pk=job.pk, status=UndoJobStatus.DONE).first(), timeout=120)
    assert (job.done, job.reverted, job.conflicts, job.skipped) == (300, 300, 0, 0)
    reverts = Change.objects.filter(action=ChangeAction.REVERT, batch_id=batch.pk)
    assert reverts.count() == 300 == reverts.values("reverts_id").distinct().count()
    assert set(
        Customer.objects.filter(record_id__in=[p.record_id for p in proposals]).values_list("version", flat=True)
    ) == {3}
