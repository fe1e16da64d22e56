"""Exactly once across two databases, with a real worker and a real `kill -9`: the worker is killed
between the intent and the write, and between the write and the done mark, and the next worker (the
sweeper) finishes the proposal without losing the write or writing it twice.

The store is a fixture parameter: any store outside the database that a worker process can reach and
that can hold a write at a gate can be added to `outside`'s params.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from approvals.jobs import apply_send_now
from approvals.models import Proposal, ProposalStatus, StopScope
from approvals.stops.services import stop_engage
from audit.models import AuditEvent
from audit.services import Actor
from records.models import Change
from records.store import RecordRef
from tests.helpers.crm import STORES_FILE, Crm
from tests.helpers.factories import ProposalFactory, UserFactory, WorkflowFactory
from tests.helpers.memory_store import bound
from tests.helpers.table_store import AFTER_WRITE, BEFORE_WRITE, TableRecordStore
from tests.helpers.worker import database_url, quiet_after, wait_until

pytestmark = pytest.mark.worker

OLD = "4 Old Mill Lane, Leith"


class Outside(Protocol):
    """A store outside the database, bound to `customer` here and in the workers this test starts, that
        the test can hold at a point of a write: `hold` before the worker starts writing, `wait_held` until
        a write waits there (the intent is committed by then), `let_go` once the worker is killed (or, with
    `killed=False`, to let the running worker's write go on)."""

    worker_options: dict[str, Any]

    def create(self, record_ids: list[str]) -> None: ...
    def held(self, record_id: str) -> tuple[Any, int]: ...
    def edit_outside(self, record_id: str, address: str) -> None: ...
    def writes(self) -> int: ...
    def hold(self, point: str, record_id: str) -> None: ...
    def wait_held(self, point: str, *, proposal_id: int) -> None: ...
    def let_go(self, *, killed: bool = True) -> None: ...


class TableOutside(Outside):
    """`tests.helpers.table_store`: a table in a SQLite file of its own, held at its gate files."""

    def __init__(self, path: Path) -> None:
        self.store = TableRecordStore(path)
        self.worker_options = {
            "settings_module": "tests.helpers.table_store_settings",
            "env": {"COUNTERSIGN_TEST_STORE_TYPE": "customer", "COUNTERSIGN_TEST_STORE_FILE": str(path)},
        }
        self.points: list[str] = []

    def create(self, record_ids: list[str]) -> None:
        self.store.create_many("customer", [(rid, {"full_name": rid, "shipping_address": OLD}) for rid in record_ids])

    def held(self, record_id: str) -> tuple[Any, int]:
        state = self.store.fetch(RecordRef("customer", record_id), ["shipping_address"])
        return state.values["shipping_address"], state.version

    def edit_outside(self, record_id: str, address: str) -> None:
        self.store.edit_outside(RecordRef("customer", record_id), {"shipping_address": address})

    def writes(self) -> int:
        return self.store.writes()

    def hold(self, point: str, record_id: str) -> None:
        self.points.append(point)
        self.store.hold(point)

    def wait_held(self, point: str, *, proposal_id: int) -> None:
        self.store.wait_held(point, timeout=30)

    def let_go(self, *, killed: bool = True) -> None:
        for point in self.points:
            self.store.let_go(point)


COUNT_WRITES = [
    "CREATE TABLE IF NOT EXISTS crm_writes (n serial PRIMARY KEY, contact_ref text NOT NULL, row_version integer)",
    "TRUNCATE crm_writes",
    """CREATE OR REPLACE FUNCTION crm_count_write() RETURNS trigger AS $$
    BEGIN
        IF current_setting('application_name') = 'countersign' THEN
            INSERT INTO crm_writes (contact_ref, row_version) VALUES (NEW.contact_ref, NEW.row_version);
        END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql""",
    "CREATE TRIGGER crm_count_write AFTER UPDATE ON crm_contacts FOR EACH ROW EXECUTE FUNCTION crm_count_write()",
]


def _waiting_on_a_lock(url: str, application: str | None = None) -> bool:
    query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    params: list[str] = []
    if application is not None:
        query += " AND application_name = %s"
        params.append(application)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
    return bool(row and row[0])


class SqlOutside(Outside):
    """The `sql` connector on the company's CRM database (`tests.helpers.crm`), bound by a stores file.
    Held with row locks: the CRM row (the worker's compare-and-set waits on it, before it lands), and
    after it, the intent's Change in Countersign's database (marking it written waits on it). The
    CRM counts the connector's writes in `crm_writes`."""

    def __init__(self, crm: Crm, folder: Path) -> None:
        self.crm = crm
        for statement in COUNT_WRITES:
            self.crm.execute(statement)
        stores = STORES_FILE.replace(
            "    deleted: deleted_at\n", "    deleted: deleted_at\n    statement_timeout: 60\n"
        )
        call_command("load_stores", str(crm.stores_file(folder, stores)))
        self.worker_options: dict[str, Any] = {}
        self.countersign_url = database_url(connection.settings_dict)
        self.locks: list[psycopg.Connection] = []

    def create(self, record_ids: list[str]) -> None:
        for rid in record_ids:
            self.crm.execute(
                "INSERT INTO crm_contacts (contact_ref, name, postal_address) VALUES (%s, %s, %s)", [rid, rid, OLD]
            )

    def held(self, record_id: str) -> tuple[Any, int]:
        contact = self.crm.contact(record_id)
        return contact["postal_address"], contact["row_version"]

    def edit_outside(self, record_id: str, address: str) -> None:
        self.crm.execute(
            "UPDATE crm_contacts SET postal_address = %s, row_version = row_version + 1 WHERE contact_ref = %s",
            [address, record_id],
        )

    def writes(self) -> int:
        return int(self.crm.execute("SELECT count(*) FROM crm_writes")[0][0])

    def _lock(self, url: str, statement: str, params: list[Any]) -> None:
        conn = psycopg.connect(url)  # a transaction, open until `let_go`
        assert conn.execute(statement, params).fetchall(), f"nothing to lock: {statement}"
        self.locks.append(conn)

    def hold(self, point: str, record_id: str) -> None:
        self._lock(self.crm.url, "SELECT 1 FROM crm_contacts WHERE contact_ref = %s FOR UPDATE", [record_id])

    def wait_held(self, point: str, *, proposal_id: int) -> None:
        wait_until(lambda: _waiting_on_a_lock(self.crm.url, "countersign"), timeout=30, what="the write to wait")
        if point == BEFORE_WRITE:
            return
        self._lock(
            self.countersign_url,
            "SELECT 1 FROM records_change WHERE proposal_id = %s AND in_flight FOR UPDATE",
            [proposal_id],
        )
        crm_lock = self.locks.pop(0)
        crm_lock.rollback()
        crm_lock.close()
        wait_until(lambda: self.writes() == 1, timeout=30, what="the write to land")
        wait_until(lambda: _waiting_on_a_lock(self.countersign_url), timeout=30, what="the done mark to wait")

    def let_go(self, *, killed: bool = True) -> None:
        # A killed worker's server sessions that wait on these locks would notice it is gone only once
        # they answer, so they end with it here, as a dropped connection does when it is noticed;
        # otherwise its write would land just after the kill (a case recovery reads as written).
        for url in (self.crm.url, self.countersign_url) if killed else ():
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
        for conn in self.locks:
            conn.rollback()
            conn.close()
        self.locks = []


@pytest.fixture(params=["table", pytest.param("sql", marks=pytest.mark.postgres)])
def outside(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outside]:
    if request.param == "sql":
        sql = SqlOutside(request.getfixturevalue("crm"), tmp_path)
        yield sql
        sql.let_go()
        return
    table = TableOutside(tmp_path / "crm.sqlite3")
    with bound("customer", table.store):
        yield table
    table.let_go()


def approved_updates(outside: Outside, count: int) -> list[Proposal]:
    workflow = WorkflowFactory()
    lead = UserFactory(username="lead")
    ids = [f"CUS-{70000 + n}" for n in range(count)]
    outside.create(ids)
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
    outside.hold(point, proposal.record_id)
    worker = start_worker(concurrency=1, **outside.worker_options)
    apply_send_now([proposal.pk])
    outside.wait_held(point, proposal_id=proposal.pk)
    assert Change.with_in_flight.get(proposal_id=proposal.pk).in_flight  # the intent committed first
    worker.kill()
    outside.let_go()
    assert status(proposal) == ProposalStatus.APPROVED
    assert outside.writes() == (0 if point == BEFORE_WRITE else 1)

    start_worker(concurrency=1, beat=True, **outside.worker_options)  # the sweeper finds it
    wait_until(lambda: status(proposal) == ProposalStatus.APPLIED, timeout=60, what="the sweeper to finish it")
    assert outside.writes() == 1
    assert_written_once(outside, proposal)


def test_an_outside_edit_while_the_worker_was_down_is_a_conflict_and_nothing_is_overwritten(start_worker, outside):
    [proposal] = approved_updates(outside, 1)
    outside.hold(BEFORE_WRITE, proposal.record_id)
    worker = start_worker(concurrency=1, **outside.worker_options)
    apply_send_now([proposal.pk])
    outside.wait_held(BEFORE_WRITE, proposal_id=proposal.pk)
    worker.kill()
    outside.let_go()
    outside.edit_outside(proposal.record_id, "7 Quay Street")

    start_worker(concurrency=1, beat=True, **outside.worker_options)
    wait_until(lambda: status(proposal) == ProposalStatus.CONFLICT, timeout=60, what="the conflict")
    assert (outside.writes(), outside.held(proposal.record_id)) == (0, ("7 Quay Street", 2))
    assert not Change.with_in_flight.filter(proposal_id=proposal.pk).exists()
    assert "shipping_address is now '7 Quay Street'" in Proposal.objects.get(pk=proposal.pk).last_error


def test_a_stop_engaged_while_a_write_is_in_flight_lets_only_that_write_finish(start_worker, outside):
    proposals = approved_updates(outside, 3)
    outside.hold(BEFORE_WRITE, proposals[0].record_id)
    start_worker(concurrency=1, **outside.worker_options)
    apply_send_now([p.pk for p in proposals])
    outside.wait_held(BEFORE_WRITE, proposal_id=proposals[0].pk)
    with transaction.atomic():
        stop_engage(scope=StopScope.GLOBAL, reason="the batch writes the wrong street", actor=Actor.system("ops"))
    outside.let_go(killed=False)

    settled, _ = quiet_after(lambda: Proposal.objects.filter(status=ProposalStatus.APPLIED).count(), for_seconds=2)
    assert settled == 1
    assert outside.writes() == 1
    assert_written_once(outside, proposals[0])
    assert [status(p) for p in proposals[1:]] == [ProposalStatus.APPROVED] * 2
    assert [outside.held(p.record_id) for p in proposals[1:]] == [(OLD, 1)] * 2
