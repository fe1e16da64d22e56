"""The apply task's soft time limit: a chunk still running when it comes stops where it is, the
write in hand rolls back, and it and the rest of the chunk stay approved, uncounted, and are queued
again. Real prefork worker processes (the threads pool has no time limits), on PostgreSQL."""

import pytest

from approvals.applying.tasks import apply_approved
from approvals.jobs import apply_send_now
from approvals.models import Proposal, ProposalStatus
from audit.models import AuditEvent
from records.models import Change, Customer
from tests.approvals.faults.holding import trail_held
from tests.helpers.approved import make_approved
from tests.helpers.worker import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]

LIMITS = {
    "COUNTERSIGN_APPLY_SOFT_TIME_LIMIT_SECONDS": "1",
    "COUNTERSIGN_APPLY_TIME_LIMIT_SECONDS": "30",
    "COUNTERSIGN_DB_LOCK_TIMEOUT_MS": "60000",  # the write waits on the trail until the soft limit
}


@pytest.fixture
def limits_where_queued(monkeypatch: pytest.MonkeyPatch) -> None:
    """The limits as this process knows them. Celery sends a task's time limits with each message
    from a process that has the task loaded (this one, once any test has loaded the tasks), and a
    worker keeps to the message's: the first chunk goes from here, those queued again from the
    worker (which has LIMITS from its environment)."""
    monkeypatch.setattr(apply_approved, "soft_time_limit", float(LIMITS["COUNTERSIGN_APPLY_SOFT_TIME_LIMIT_SECONDS"]))
    monkeypatch.setattr(apply_approved, "time_limit", float(LIMITS["COUNTERSIGN_APPLY_TIME_LIMIT_SECONDS"]))
    monkeypatch.setattr(apply_approved, "_exec_options", None)  # Celery's cache of the options it sends


@pytest.mark.usefixtures("limits_where_queued")
def test_a_chunk_past_its_soft_time_limit_writes_nothing_half_and_applies_later(start_worker):
    ids = make_approved(3)
    worker = start_worker(concurrency=1, pool="prefork", env=LIMITS)
    with trail_held():  # the first write of the chunk waits in the middle, on the trail
        apply_send_now(ids)
        wait_until(lambda: worker.log().count("'deferred': 3") >= 2, timeout=30, what="two chunks stopped")
        proposals = Proposal.objects.filter(pk__in=ids)
        assert {p.status for p in proposals} == {ProposalStatus.APPROVED}
        # Stopped twice, counted at most once: by the chunk running now, which gives it back as it ends.
        assert {p.apply_attempts for p in proposals} <= {0, 1}
        assert not Change.objects.filter(proposal_id__in=ids).exists()
        record_ids = [p.record_id for p in proposals]
        assert set(Customer.objects.filter(record_id__in=record_ids).values_list("version", flat=True)) == {1}

    wait_until(
        lambda: Proposal.objects.filter(pk__in=ids, status=ProposalStatus.APPLIED).count() == 3,
        timeout=30,
        what="the chunk once the trail is let go",
    )
    for proposal in Proposal.objects.filter(pk__in=ids):
        assert proposal.apply_attempts == 0
        customer = Customer.objects.get(record_id=proposal.record_id)
        assert (customer.shipping_address, customer.version) == (proposal.changes["shipping_address"], 2)
        assert Change.objects.filter(proposal_id=proposal.pk).count() == 1
        assert AuditEvent.objects.filter(action="change.applied", proposal_id=proposal.pk).count() == 1
