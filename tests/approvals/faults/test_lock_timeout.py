"""A row another transaction holds past the worker's `lock_timeout`: the write waiting on it is
deferred, not counted, and tried again until the row is let go; meanwhile the worker goes on with
the rest of its chunk. Real worker processes, on PostgreSQL (lock_timeout is PostgreSQL's)."""

import pytest

from approvals.jobs import apply_send_now
from approvals.models import Proposal, ProposalStatus
from audit.models import AuditEvent
from records.models import Change, Customer
from tests.approvals.faults.holding import held_row
from tests.helpers.approved import make_approved
from tests.helpers.worker import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]

LOCK_TIMEOUT_MS = 300


def proposal(pk: int) -> Proposal:
    return Proposal.objects.get(pk=pk)


@pytest.mark.parametrize("held", ["record", "proposal"])
def test_a_row_held_past_the_lock_timeout_defers_its_write_while_the_worker_goes_on(start_worker, held):
    locked, free = make_approved(2)
    record_id = proposal(locked).record_id
    holder = (
        held_row(Customer._meta.db_table, "record_id", record_id)
        if held == "record"
        else held_row(Proposal._meta.db_table, "id", locked)
    )
    try:
        worker = start_worker(concurrency=1, env={"COUNTERSIGN_DB_LOCK_TIMEOUT_MS": str(LOCK_TIMEOUT_MS)})
        apply_send_now([locked, free])  # one chunk, the held one first
        wait_until(lambda: proposal(free).status == ProposalStatus.APPLIED, timeout=30, what="the other proposal")
        # Tried again and again while the row is held, never counted, never written.
        wait_until(lambda: worker.log().count("'deferred': 1") >= 3, timeout=30, what="the write to be tried again")
        waiting = proposal(locked)
        assert (waiting.status, waiting.apply_attempts) == (ProposalStatus.APPROVED, 0)
        assert not Change.objects.filter(proposal_id=locked).exists()
    finally:
        holder.rollback()
        holder.close()

    wait_until(lambda: proposal(locked).status == ProposalStatus.APPLIED, timeout=30, what="the write once let go")
    for pk in (locked, free):
        applied = proposal(pk)
        assert (applied.status, applied.apply_attempts) == (ProposalStatus.APPLIED, 0)
        customer = Customer.objects.get(record_id=applied.record_id)
        assert (customer.shipping_address, customer.version) == (applied.changes["shipping_address"], 2)
        assert Change.objects.filter(proposal_id=pk).count() == 1
        assert AuditEvent.objects.filter(action="change.applied", proposal_id=pk).count() == 1
    assert not AuditEvent.objects.filter(action="proposal.failed").exists()
