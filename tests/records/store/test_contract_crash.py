"""The connector contract's crash cases: a real worker killed with `kill -9` between storing the intent
and writing the system of record, and between that write and marking it done. Either way the write
lands exactly once: the retry reads the system first. Run against each connector in
`tests.helpers.contract.CONNECTORS` that can hold a write at its own lock (`hold_writes`).
"""

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from django.db import connection

from approvals.jobs import apply_send_now
from approvals.models import Proposal, ProposalStatus
from audit.models import AuditEvent
from records.models import Change
from records.store import RecordRef
from tests.helpers.contract import CONNECTORS, Connector, connector_params, rows_held
from tests.helpers.factories import ProposalFactory
from tests.helpers.worker import database_url, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.redis]


@pytest.fixture(params=connector_params(lambda connector: connector.hold_writes is not None))
def connector(request: pytest.FixtureRequest, transactional_db: None) -> Iterator[Connector]:
    made = CONNECTORS[request.param]()
    with made.bind():
        yield made


def _approved(connector: Connector, ref: RecordRef) -> Proposal:
    proposal: Proposal = ProposalFactory(
        status=ProposalStatus.APPROVED,
        record_type=connector.record_type,
        record_id=ref.record_id,
        changes={connector.field: connector.values[1]},
        base={connector.field: connector.values[0]},
    )
    return proposal


def _intent(proposal: Proposal) -> Change | None:
    return Change.with_in_flight.filter(proposal_id=proposal.pk, in_flight=True).first()


def _applied_once(connector: Connector, ref: RecordRef, proposal: Proposal, version: int) -> None:
    """What a person checks afterwards: the record holds the new value at the next version (written
    once), one Change and one `change.applied` event, and nothing taken for an edit made outside."""
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.APPLIED
    now = connector.store.fetch(ref, [connector.field])
    assert (now.values[connector.field], now.version) == (connector.values[1], version + 1)
    [change] = Change.with_in_flight.filter(proposal_id=proposal.pk)
    assert (change.in_flight, change.version_before, change.version_after) == (False, version, version + 1)
    assert AuditEvent.objects.filter(action="change.applied", proposal_id=proposal.pk).count() == 1
    assert not AuditEvent.objects.filter(action="record.changed_outside", record_id=ref.record_id).exists()


def _retried(start_worker, proposal: Proposal) -> None:  # type: ignore[no-untyped-def]
    start_worker()
    apply_send_now([proposal.pk])
    wait_until(
        lambda: Proposal.objects.get(pk=proposal.pk).status != ProposalStatus.APPROVED, timeout=60, what="the retry"
    )


def test_a_worker_killed_between_the_intent_and_the_write_writes_once_on_the_retry(connector, start_worker):
    ref = connector.new_record()
    version = connector.store.fetch(ref, []).version
    proposal = _approved(connector, ref)
    assert connector.hold_writes is not None
    holding = connector.hold_writes(ref)  # before a worker starts: it skips when the lock is out of reach
    worker = start_worker()
    with holding as hold:
        apply_send_now([proposal.pk])
        wait_until(hold.waiting, timeout=60, what="the worker's write waiting on the system's lock")
        assert _intent(proposal) is not None
        worker.kill()
        hold.cut()
    assert connector.store.fetch(ref, [connector.field]).values[connector.field] == connector.values[0]
    assert _intent(proposal) is not None

    _retried(start_worker, proposal)
    _applied_once(connector, ref, proposal, version)


# Marking the write done is held at the intent's row lock in Countersign's own database: PostgreSQL.
@pytest.mark.postgres
def test_a_worker_killed_between_the_write_and_marking_it_done_finishes_without_writing_again(connector, start_worker):
    ref = connector.new_record()
    version = connector.store.fetch(ref, []).version
    proposal = _approved(connector, ref)
    countersign = database_url(connection.settings_dict)
    assert connector.hold_writes is not None
    holding = connector.hold_writes(ref)  # before a worker starts: it skips when the lock is out of reach
    worker = start_worker()
    with ExitStack() as held_by_the_system:
        system = held_by_the_system.enter_context(holding)
        apply_send_now([proposal.pk])
        wait_until(system.waiting, timeout=60, what="the worker's write waiting on the system's lock")
        intent = _intent(proposal)
        assert intent is not None
        # Hold the intent's row, then let the write through: it lands, and marking it done waits.
        with rows_held(countersign, Change._meta.db_table, "id = %s", [intent.pk]) as done:
            held_by_the_system.close()
            wait_until(done.waiting, timeout=60, what="marking the written intent done, waiting on its row")
            worker.kill()
            done.cut()
    now = connector.store.fetch(ref, [connector.field])
    assert (now.values[connector.field], now.version) == (connector.values[1], version + 1)
    assert _intent(proposal) is not None

    _retried(start_worker, proposal)
    _applied_once(connector, ref, proposal, version)
