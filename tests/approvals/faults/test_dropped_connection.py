"""The worker's database connection dropped in the middle of a write (`pg_terminate_backend`, as a
database restart or a failover does): the write is tried again on a new connection, counts no
attempt, and lands exactly once. Real worker processes, on PostgreSQL."""

import psycopg
import pytest
from django.db import connection

from approvals.jobs import apply_send_now
from approvals.models import Proposal, ProposalStatus
from audit.models import AuditEvent
from records.models import Change, Customer
from tests.approvals.faults.holding import sessions_waiting, trail_held
from tests.helpers.approved import make_approved
from tests.helpers.worker import database_url, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]


def test_a_connection_dropped_mid_write_is_replaced_and_the_write_lands_once_uncounted(start_worker):
    [pk] = make_approved(1)
    worker = start_worker(concurrency=1, env={"COUNTERSIGN_DB_LOCK_TIMEOUT_MS": "60000"})
    with trail_held():
        apply_send_now([pk])
        dropped = wait_until(sessions_waiting, timeout=30, what="the write to wait on the trail")
        with psycopg.connect(database_url(connection.settings_dict), autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [list(dropped)])
        # The same write, on a new connection, waits on the trail again: no retry queued, no delay.
        wait_until(lambda: sessions_waiting() - dropped, timeout=30, what="the write on a new connection")
        assert Proposal.objects.get(pk=pk).status == ProposalStatus.APPROVED

    wait_until(lambda: Proposal.objects.get(pk=pk).status == ProposalStatus.APPLIED, timeout=30, what="the write")
    applied = Proposal.objects.get(pk=pk)
    assert applied.apply_attempts == 0
    assert applied.last_error == ""
    customer = Customer.objects.get(record_id=applied.record_id)
    assert (customer.shipping_address, customer.version) == (applied.changes["shipping_address"], 2)
    change = Change.objects.get(proposal_id=pk)
    assert applied.change_id == change.id
    assert AuditEvent.objects.filter(action="change.applied", proposal_id=pk).count() == 1
    assert "the database connection dropped; trying on a new one" in worker.log()
