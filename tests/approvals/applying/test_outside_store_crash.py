"""Exactly once across two databases, with a real worker and a real `kill -9`: the worker is killed
between the intent and the write, and between the write and the done mark, and the next worker (the
sweeper) finishes the proposal without losing the write or writing it twice.

The store is a fixture parameter: any store outside the database that a worker process can reach and
that can hold a write at a gate can be added to `outside`'s params.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from approvals.jobs import apply_send_now
from approvals.models import Proposal, ProposalStatus, StopScope
from approvals.stops.services import stop_engage
from audit.models import AuditEvent
from audit.services import Actor
from records.models import Change
from records.store import RecordRef
from tests.helpers.factories import ProposalFactory, UserFactory, WorkflowFactory
from tests.helpers.memory_store import bound
from tests.helpers.table_store import AFTER_WRITE, BEFORE_WRITE, TableRecordStore
from tests.helpers.worker import quiet_after, wait_until

pytestmark = pytest.mark.worker

OLD = "4 Old Mill Lane, Leith"


@dataclass
class Outside:
    """A store outside the database, bound to `customer` here and in the workers this test starts."""

    store: TableRecordStore
    worker_options: dict[str, Any]

    def held(self, record_id: str) -> tuple[Any, int]:
        state = self.store.fetch(RecordRef("customer", record_id), ["shipping_address"])
        return state.values["shipping_address"], state.version


@pytest.fixture(params=["table"])
def outside(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outside]:
    path = tmp_path / "crm.sqlite3"
    store = TableRecordStore(path)
    options = {
        "settings_module": "tests.helpers.table_store_settings",
        "env": {"COUNTERSIGN_TEST_STORE_TYPE": "customer", "COUNTERSIGN_TEST_STORE_FILE": str(path)},
    }
    with bound("customer", store):
        yield Outside(store, options)


def approved_updates(outside: Outside, count: int) -> list[Proposal]:
    workflow = WorkflowFactory()
    lead = UserFactory(username="lead")
    ids = [f"CUS-{70000 + n}" for n in range(count)]
    outside.store.create_many(
        "customer", [(rid, {"full_name": f"Customer {rid}", "shipping_address": OLD}) for rid in ids]
    )
    return [
        ProposalFactory(
            workflow=workflow,
            record_id=rid,
            changes={"shipping_address": f"{n} Harbour Road, Leith"},
            base={"shipping_address": OLD},
            status=ProposalStatus.APPROVED,
            approved_at=timezone.now(),
            decided_by=lead,
        )
        for n, rid in enumerate(ids)
    ]


def status(proposal: Proposal) -> str:
    return Proposal.objects.get(pk=proposal.pk).status


def assert_written_once(outside: Outside, proposal: Proposal) -> None:
    assert status(proposal) == ProposalStatus.APPLIED
    assert outside.held(proposal.record_id) == (proposal.changes["shipping_address"], 2)
    change = Change.objects.get(proposal_id=proposal.pk)
    assert (change.in_flight, change.version_before, change.version_after) == (False, 1, 2)
    assert AuditEvent.objects.filter(action="change.applied", proposal_id=proposal.pk).count() == 1


@pytest.mark.parametrize("point", [BEFORE_WRITE, AFTER_WRITE])
def test_kill_9_between_two_steps_never_loses_the_write_and_never_writes_twice(start_worker, outside, point):
    [proposal] = approved_updates(outside, 1)
    outside.store.hold(point)
    worker = start_worker(concurrency=1, **outside.worker_options)
    apply_send_now([proposal.pk])
    outside.store.wait_held(point, timeout=30)
    assert Change.with_in_flight.get(proposal_id=proposal.pk).in_flight  # the intent committed first
    worker.kill()
    outside.store.let_go(point)
    assert status(proposal) == ProposalStatus.APPROVED
    assert outside.store.writes() == (0 if point == BEFORE_WRITE else 1)

    start_worker(concurrency=1, beat=True, **outside.worker_options)  # the sweeper finds it
    wait_until(lambda: status(proposal) == ProposalStatus.APPLIED, timeout=60, what="the sweeper to finish it")
    assert outside.store.writes() == 1
    assert_written_once(outside, proposal)


def test_an_outside_edit_while_the_worker_was_down_is_a_conflict_and_nothing_is_overwritten(start_worker, outside):
    [proposal] = approved_updates(outside, 1)
    outside.store.hold(BEFORE_WRITE)
    worker = start_worker(concurrency=1, **outside.worker_options)
    apply_send_now([proposal.pk])
    outside.store.wait_held(BEFORE_WRITE, timeout=30)
    worker.kill()
    outside.store.let_go(BEFORE_WRITE)
    outside.store.edit_outside(RecordRef("customer", proposal.record_id), {"shipping_address": "7 Quay Street"})

    start_worker(concurrency=1, beat=True, **outside.worker_options)
    wait_until(lambda: status(proposal) == ProposalStatus.CONFLICT, timeout=60, what="the conflict")
    assert (outside.store.writes(), outside.held(proposal.record_id)) == (0, ("7 Quay Street", 2))
    assert not Change.with_in_flight.filter(proposal_id=proposal.pk).exists()
    assert "shipping_address is now '7 Quay Street'" in Proposal.objects.get(pk=proposal.pk).last_error


def test_a_stop_engaged_while_a_write_is_in_flight_lets_only_that_write_finish(start_worker, outside):
    proposals = approved_updates(outside, 3)
    outside.store.hold(BEFORE_WRITE)
    start_worker(concurrency=1, **outside.worker_options)
    apply_send_now([p.pk for p in proposals])
    outside.store.wait_held(BEFORE_WRITE, timeout=30)
    with transaction.atomic():
        stop_engage(scope=StopScope.GLOBAL, reason="the batch writes the wrong street", actor=Actor.system("ops"))
    outside.store.let_go(BEFORE_WRITE)

    settled, _ = quiet_after(lambda: Proposal.objects.filter(status=ProposalStatus.APPLIED).count(), for_seconds=2)
    assert settled == 1
    assert outside.store.writes() == 1
    assert_written_once(outside, proposals[0])
    assert [status(p) for p in proposals[1:]] == [ProposalStatus.APPROVED] * 2
    assert [outside.held(p.record_id) for p in proposals[1:]] == [(OLD, 1)] * 2
