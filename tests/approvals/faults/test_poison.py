"""A proposal whose apply ends the worker process (a segfault, the out-of-memory killer, `os._exit`)
counts an attempt each time, ends `failed` after APPLY_MAX_ATTEMPTS with why, and stops only itself:
the other proposals of its chunk are applied. The worker processes are real (prefork, acks late,
rejected on a lost worker, so the message comes back each time the process dies); the service tests
after it play a stopped worker by counting a chunk's start and going no further."""

import pytest
from django.utils import timezone

from approvals.applying.locking import proposals_start
from approvals.applying.results import Outcome
from approvals.applying.services import proposals_apply
from approvals.jobs import APPLY, apply_send_now
from approvals.models import Proposal, ProposalStatus
from audit.models import AuditEvent
from records.models import Change, Customer
from tests.approvals.faults.poisoned import POISON
from tests.helpers.factories import CustomerFactory, ProposalFactory, UserFactory, WorkflowFactory
from tests.helpers.worker import wait_until

OLD = "4 Old Mill Lane, Leith"
POISONED = {"settings_module": "tests.approvals.faults.poisoned_settings"}


def approved_updates(*addresses: str) -> list[Proposal]:
    """An approved address change for a customer of its own, per address."""
    workflow, lead = WorkflowFactory(), UserFactory(username="lead")
    return [
        ProposalFactory(
            workflow=workflow,
            record_id=CustomerFactory().record_id,
            changes={"shipping_address": address},
            base={"shipping_address": OLD},
            status=ProposalStatus.APPROVED,
            approved_at=timezone.now(),
            decided_by=lead,
        )
        for address in addresses
    ]


def status(proposal: Proposal) -> str:
    return Proposal.objects.get(pk=proposal.pk).status


@pytest.mark.worker
def test_a_proposal_that_ends_its_worker_fails_after_the_attempts_and_the_rest_of_its_chunk_applies(start_worker):
    before, poison, *after = approved_updates("1 Quay Street", POISON, "2 Quay Street", "3 Quay Street")
    worker = start_worker(concurrency=1, env={"COUNTERSIGN_APPLY_MAX_ATTEMPTS": "3"}, **POISONED)
    apply_send_now([before.pk, poison.pk, *(p.pk for p in after)])  # one chunk, the poison second

    wait_until(lambda: status(poison) == ProposalStatus.FAILED, timeout=90, interval=0.2, what="the poison to fail")
    healthy = [before, *after]
    wait_until(
        lambda: all(status(p) == ProposalStatus.APPLIED for p in healthy),
        timeout=60,
        interval=0.2,
        what="the rest of the chunk",
    )

    poison.refresh_from_db()
    assert poison.apply_attempts == 3
    assert "given up after 3 attempts: the worker applying it stopped before it finished" in poison.last_error
    event = AuditEvent.objects.get(action="proposal.failed", proposal_id=poison.pk)
    assert (event.reason, event.details["attempts"]) == (poison.last_error, 3)
    assert Customer.objects.get(record_id=poison.record_id).shipping_address == OLD
    assert not Change.objects.filter(proposal_id=poison.pk).exists()
    assert worker.log().count("exited with 'exitcode 70'") == 3  # tried exactly three times, each ending its process

    for proposal in healthy:
        customer = Customer.objects.get(record_id=proposal.record_id)
        assert (customer.shipping_address, customer.version) == (proposal.changes["shipping_address"], 2)
        assert Change.objects.filter(proposal_id=proposal.pk).count() == 1
        assert AuditEvent.objects.filter(action="change.applied", proposal_id=proposal.pk).count() == 1


def test_a_chunk_that_finds_proposals_started_and_unfinished_queues_each_alone(
    db, queued, django_capture_on_commit_callbacks
):
    first, second, fresh = approved_updates("1 Quay Street", "2 Quay Street", "3 Quay Street")
    proposals_start([first.pk, second.pk])  # a chunk started them, and its worker stopped
    with django_capture_on_commit_callbacks(execute=True):
        results = proposals_apply(proposal_ids=[first.pk, second.pk, fresh.pk], worker="worker@test/1")
    assert [r.outcome for r in results] == [Outcome.ISOLATED, Outcome.ISOLATED, Outcome.APPLIED]
    assert [q.args for q in queued if q.name == APPLY] == [[[first.pk]], [[second.pk]]]
    assert [status(p) for p in (first, second)] == [ProposalStatus.APPROVED] * 2
    # The stopped chunk's count stands; this chunk's was given back.
    assert [Proposal.objects.get(pk=p.pk).apply_attempts for p in (first, second, fresh)] == [1, 1, 0]

    alone = proposals_apply(proposal_ids=[first.pk], worker="worker@test/1")  # its own message
    assert [r.outcome for r in alone] == [Outcome.APPLIED]
    assert Proposal.objects.get(pk=first.pk).apply_attempts == 1


def test_a_proposal_whose_attempts_ended_their_worker_is_given_up_without_another(db, settings):
    settings.COUNTERSIGN = {**settings.COUNTERSIGN, "APPLY_MAX_ATTEMPTS": 2}
    [proposal] = approved_updates(POISON)
    for _ in range(2):
        proposals_start([proposal.pk])  # each time, the worker stopped before it finished
    [result] = proposals_apply(proposal_ids=[proposal.pk], worker="worker@test/1")
    assert result.outcome == Outcome.FAILED
    proposal.refresh_from_db()
    assert (proposal.status, proposal.apply_attempts) == (ProposalStatus.FAILED, 2)
    assert proposal.last_error.startswith("given up after 2 attempts: the worker applying it stopped")
    assert AuditEvent.objects.get(action="proposal.failed", proposal_id=proposal.pk).details == {"attempts": 2}
    assert Customer.objects.get(record_id=proposal.record_id).shipping_address == OLD
