"""Undo under concurrency, on PostgreSQL: row locks decide, never luck."""

import threading

import pytest
from django.db import connection

from approvals.applying.services import proposals_apply
from approvals.models import ProposalStatus, UndoJob, UndoJobStatus, UndoScope
from approvals.undo.selectors import UndoSelection
from approvals.undo.services import undo_change, undo_job_run, undo_job_start
from audit.services import Actor, audit_verify_chain
from core.errors import InvalidTransition
from records.models import Change, ChangeAction, Customer
from tests.helpers.factories import BatchFactory, ProposalFactory

pytestmark = pytest.mark.postgres


def in_threads(*targets):  # type: ignore[no-untyped-def]
    """Run each target in its own thread and database connection, started together; return what each did."""
    barrier = threading.Barrier(len(targets))
    outcomes: list = [None] * len(targets)

    def run(index: int, target) -> None:  # type: ignore[no-untyped-def]
        try:
            barrier.wait()
            outcomes[index] = target()
        except Exception as error:
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def applied_batch(size: int):  # type: ignore[no-untyped-def]
    batch = BatchFactory(expected_size=size)
    proposals = [
        ProposalFactory(workflow=batch.workflow, batch=batch, status=ProposalStatus.APPROVED) for _ in range(size)
    ]
    proposals_apply(proposal_ids=[p.pk for p in proposals], worker="setup/1")
    return batch, proposals


def test_two_people_undoing_one_change_at_once_write_one_undo(transactional_db):
    _, [proposal] = applied_batch(1)
    change = Change.objects.get(proposal_id=proposal.pk)

    def undo():  # type: ignore[no-untyped-def]
        return undo_change(change=change, actor=Actor.system("ops"))

    outcomes = in_threads(undo, undo, undo)
    done = [o for o in outcomes if not isinstance(o, Exception)]
    refused = [o for o in outcomes if isinstance(o, InvalidTransition)]
    assert len(done) == 1 and len(refused) == 2, outcomes
    assert all("already undone" in str(error) for error in refused)
    assert Change.objects.filter(action=ChangeAction.REVERT).count() == 1
    assert Customer.objects.get(record_id=proposal.record_id).version == 3
    assert audit_verify_chain()[1] is None


def test_two_workers_running_one_job_take_turns_and_undo_each_change_once(transactional_db):
    batch, proposals = applied_batch(60)
    job = undo_job_start(
        selection=UndoSelection(scope=UndoScope.BATCH, batch=batch), actor=Actor.system("ops"), reason="x y z"
    )

    def run(name: str):  # type: ignore[no-untyped-def]
        return lambda: undo_job_run(job_id=job.pk, worker=name, chunk_size=4)

    outcomes = in_threads(run("a/1"), run("b/2"))
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    job = UndoJob.objects.get(pk=job.pk)
    assert (job.status, job.done, job.reverted, job.skipped) == (UndoJobStatus.DONE, 60, 60, 0)
    reverts = Change.objects.filter(action=ChangeAction.REVERT)
    assert reverts.count() == 60 == reverts.values("reverts_id").distinct().count()


def test_a_single_undo_racing_a_bulk_undo_over_the_same_record_never_undoes_twice(transactional_db):
    batch, proposals = applied_batch(30)
    target = Change.objects.get(proposal_id=proposals[15].pk)
    job = undo_job_start(
        selection=UndoSelection(scope=UndoScope.BATCH, batch=batch), actor=Actor.system("ops"), reason="x y z"
    )
    outcomes = in_threads(
        lambda: undo_job_run(job_id=job.pk, worker="a/1", chunk_size=5),
        lambda: undo_change(change=target, actor=Actor.system("lead")),
    )
    job = UndoJob.objects.get(pk=job.pk)
    single = outcomes[1]
    assert isinstance(single, InvalidTransition) or single.revert is not None, outcomes
    assert job.reverted + job.skipped == 30 and job.reverted == (29 if job.skipped else 30)
    assert Change.objects.filter(action=ChangeAction.REVERT, reverts=target).count() == 1
    assert Customer.objects.get(record_id=proposals[15].record_id).shipping_address == "4 Old Mill Lane, Leith"
