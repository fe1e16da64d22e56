"""Apply throughput and the stop switch, on PostgreSQL and Redis.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/NAME REDIS_URL=redis://127.0.0.1:6379/N \\
        .venv/bin/python bench/apply.py [--count 20000] [--workers 2]

In a scratch database (NAME_bench, created here and dropped at the end):
1. the raw baseline: one psycopg connection doing each row's work by hand: lock the record, update
   it, insert the change, mark the proposal applied, append the chained audit event, commit;
2. as many approved single-field updates applied by one Celery worker with 2 processes, through
   the real task, services and audit chain;
3. a second batch, stopped part-way: the writes committed after the stop, per worker process, and
   the time from the stop's commit to the last write; then release, and the rest applies.
Targets: the worker at least 40% of the raw rate and 20,000 in at most 30 s; after the stop at most
one write per worker process, halted within 1 s.

With `--store sql` the customers live in a table of a second PostgreSQL database (NAME_bench_crm,
created and dropped here: the `crm_contacts` table of the tests, its own column names), bound with a
stores file and `load_stores`, and it measures instead:
1. the raw baseline: per row, by hand, with one connection to each database: read the contact, store
   the intent (the Change) and commit, the compare-and-set update of the contact on its version
   column, then mark the proposal applied and append the chained audit event and commit;
2. the same number of approved updates applied through the `sql` connector by the worker's processes;
3. the same number applied on the built-in store, in the same run, before the binding is loaded.
Targets: the `sql` connector at least 40% of the raw rate, and within 2x of the built-in store.
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.seeding import OLD_ADDRESS, address_batch, recreate, scratch_database  # noqa: E402

WORKFLOW = "bench-addresses"


def seed(sizes: dict[str, int], *, outside: Iterable[str] = ()) -> dict[str, tuple[int, list[int]]]:
    """A live workflow; per named batch, that many customers with one approved address change each.
    The customers of the batches named in `outside` are not made in the built-in store."""
    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from approvals.intake.accounts import service_account_create
    from approvals.models import ProposalStatus, Workflow
    from audit.services import Actor

    workflow = Workflow.objects.create(
        slug=WORKFLOW,
        name="Bench addresses",
        owner=User.objects.create_user("bench-owner", password=None),
        lane="write",
        stage="live",
        approver_group=Group.objects.create(name="bench-approvers"),
        actions=["update"],
    )
    # As in production: each proposal sent by a pipeline and approved by a person.
    account = service_account_create(workflow=workflow, name="pipeline", actor=Actor.system("bench")).account
    lead = User.objects.create_user("bench-lead", password=None)
    made = {}
    first = 100000
    for label, size in sizes.items():
        batch, proposals = address_batch(
            workflow,
            label,
            first,
            size,
            customer=None if label in outside else lambda n: {"shipping_address": OLD_ADDRESS},
            status=ProposalStatus.APPROVED,
            decided_at=timezone.now(),
            decided_by=lead,
            service_account=account,
        )
        first += size
        made[label] = (batch.pk, [p.pk for p in proposals])
    return made


INSERT_CHANGE = (
    "INSERT INTO records_change (id, record_type, record_id, action, before, after, version_before, version_after,"
    " proposal_id, batch_id, workflow_slug, prompt_version, applied_at, applied_by)"
    " VALUES (%s, 'customer', %s, 'update', %s, %s, %s, %s, %s, %s, %s, 'bench@1', %s, 'raw')"
)
INSERT_EVENT = (
    "INSERT INTO audit_auditevent (occurred_at, actor_kind, actor_id, actor_label, action, record_type, record_id,"
    " field, old_value, new_value, proposal_id, change_id, batch_id, workflow_slug, model_name, model_version,"
    " prompt_version, approver_label, decided_at, reason, details, prev_hash, hash)"
    " VALUES (%s, 'worker', 'raw', 'raw', 'change.applied', 'customer', %s, 'shipping_address', %s, %s, %s, %s, %s,"
    " %s, 'bench', '1', 'bench@1', %s, %s, 'bench', %s, %s, %s)"
)


def raw_loop(url: str, batch_id: int, proposal_ids: list[int]) -> float:
    """Each row's work by hand in one connection, one transaction per row; returns the seconds taken."""
    import psycopg
    from psycopg.types.json import Jsonb

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT p.id, p.record_id, p.changes, u.username, p.decided_at FROM approvals_proposal p"
            " JOIN auth_user u ON u.id = p.decided_by_id WHERE p.id = ANY(%s) ORDER BY p.id",
            [proposal_ids],
        ).fetchall()
        conn.commit()
        started = time.perf_counter()
        for proposal_id, record_id, changes, approver, decided_at in rows:
            now = datetime.now(UTC)
            occurred = now.replace(microsecond=(now.microsecond // 1000) * 1000)
            new_value = changes["shipping_address"]
            locked = conn.execute(
                "SELECT id, version, shipping_address FROM records_customer WHERE record_id = %s FOR UPDATE",
                [record_id],
            ).fetchone()
            assert locked is not None
            customer_id, version, old_value = locked
            conn.execute(
                "UPDATE records_customer SET shipping_address = %s, version = %s, updated_at = %s WHERE id = %s",
                [new_value, version + 1, now, customer_id],
            )
            change_id = uuid.uuid4()
            before, after = Jsonb({"shipping_address": old_value}), Jsonb({"shipping_address": new_value})
            conn.execute(
                INSERT_CHANGE,
                [change_id, record_id, before, after, version, version + 1, proposal_id, batch_id, WORKFLOW, now],
            )
            conn.execute(
                "UPDATE approvals_proposal SET status = 'applied', change_id = %s, updated_at = %s WHERE id = %s",
                [change_id, now, proposal_id],
            )
            append_event(
                conn, occurred, record_id, old_value, new_value, proposal_id, change_id, batch_id, approver, decided_at
            )
            conn.commit()
        return time.perf_counter() - started


def append_event(conn: Any, occurred: datetime, record_id: str, old: str, new: str, *ids: Any) -> None:
    """Lock the chain, read its head and append the `change.applied` event, as the product links it."""
    from psycopg.types.json import Jsonb

    from audit.services import _CHAIN_LOCK_KEY

    proposal_id, change_id, batch_id, approver, decided_at = ids
    conn.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
    head = conn.execute("SELECT hash FROM audit_auditevent ORDER BY id DESC LIMIT 1").fetchone()
    previous = head[0] if head else "0" * 64
    content = {
        "occurred_at": occurred.isoformat(timespec="milliseconds"),
        "actor_kind": "worker",
        "actor_id": "raw",
        "actor_label": "raw",
        "action": "change.applied",
        "record_type": "customer",
        "record_id": record_id,
        "field": "shipping_address",
        "old_value": old,
        "new_value": new,
        "proposal_id": proposal_id,
        "change_id": str(change_id),
        "batch_id": batch_id,
        "workflow_slug": WORKFLOW,
        "model_name": "bench",
        "model_version": "1",
        "prompt_version": "bench@1",
        "approver_label": approver,
        "decided_at": decided_at.astimezone(UTC).isoformat(timespec="milliseconds"),
        "reason": "bench",
        "details": {},
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(previous.encode() + canonical).hexdigest()
    conn.execute(
        INSERT_EVENT,
        [occurred, record_id, Jsonb(old), Jsonb(new), proposal_id, change_id, batch_id]
        + [WORKFLOW, approver, decided_at, Jsonb({}), previous, digest],
    )


def crm_seed(crm_url: str, proposal_ids: list[int]) -> None:
    """The `crm_contacts` table of the tests in the CRM database, one contact per proposal's customer,
    at OLD_ADDRESS and version 1."""
    import psycopg

    from approvals.models import Proposal
    from tests.helpers.crm import TABLE

    record_ids = list(Proposal.objects.filter(pk__in=proposal_ids).values_list("record_id", flat=True))
    with psycopg.connect(crm_url) as conn:
        conn.execute(TABLE)
        with conn.cursor().copy("COPY crm_contacts (contact_ref, name, postal_address) FROM STDIN") as copy:
            for record_id in record_ids:
                copy.write_row((record_id, f"Customer {record_id}", OLD_ADDRESS))


def raw_sql_loop(url: str, crm_url: str, batch_id: int, proposal_ids: list[int]) -> float:
    """Each row's work by hand across the two databases; returns the seconds taken."""
    import psycopg
    from psycopg.types.json import Jsonb

    with psycopg.connect(url) as conn, psycopg.connect(crm_url, autocommit=True) as crm:
        rows = conn.execute(
            "SELECT p.id, p.record_id, p.changes, u.username, p.decided_at FROM approvals_proposal p"
            " JOIN auth_user u ON u.id = p.decided_by_id WHERE p.id = ANY(%s) ORDER BY p.id",
            [proposal_ids],
        ).fetchall()
        conn.commit()
        started = time.perf_counter()
        for proposal_id, record_id, changes, approver, decided_at in rows:
            now = datetime.now(UTC)
            occurred = now.replace(microsecond=(now.microsecond // 1000) * 1000)
            new_value = changes["shipping_address"]
            found = crm.execute(
                "SELECT row_version, postal_address FROM crm_contacts WHERE contact_ref = %s", [record_id]
            ).fetchone()
            assert found is not None
            version, old_value = found
            change_id = uuid.uuid4()
            before, after = Jsonb({"shipping_address": old_value}), Jsonb({"shipping_address": new_value})
            conn.execute(
                INSERT_CHANGE,
                [change_id, record_id, before, after, version, version + 1, proposal_id, batch_id, WORKFLOW, now],
            )
            conn.commit()
            written = crm.execute(
                "UPDATE crm_contacts SET postal_address = %s, row_version = row_version + 1"
                " WHERE contact_ref = %s AND row_version = %s RETURNING row_version",
                [new_value, record_id, version],
            ).fetchone()
            assert written is not None
            conn.execute(
                "UPDATE approvals_proposal SET status = 'applied', change_id = %s, updated_at = %s WHERE id = %s",
                [change_id, now, proposal_id],
            )
            append_event(
                conn, occurred, record_id, old_value, new_value, proposal_id, change_id, batch_id, approver, decided_at
            )
            conn.commit()
        return time.perf_counter() - started


def applied(batch_id: int) -> int:
    from records.models import Change

    return Change.objects.filter(batch_id=batch_id).count()


def wait_for(batch_id: int, total: int, *, timeout: float, interval: float = 0.05) -> None:
    started = time.perf_counter()
    while applied(batch_id) < total:
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"batch {batch_id}: only {applied(batch_id)} of {total} applied after {timeout}s")
        time.sleep(interval)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20000, help="approved updates for the worker and the raw loop")
    parser.add_argument("--stop-count", type=int, default=6000, help="the batch that is stopped part-way")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--store", choices=["builtin", "sql"], default="builtin", help="where the customers live (see above)"
    )
    args = parser.parse_args()

    if not os.environ.get("REDIS_URL"):
        raise SystemExit("bench/apply.py needs REDIS_URL=redis://... (the production broker)")
    url, admin_url, name = scratch_database(os.environ.get("DATABASE_URL", ""), "_bench")
    recreate(admin_url, name)
    os.environ.update({"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.local", "DEBUG": "false"})

    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connections

    from approvals import jobs
    from approvals.models import Batch, StopScope
    from approvals.stops.services import stop_engage, stop_release
    from audit.services import Actor, audit_verify_chain
    from records.models import Change
    from tests.helpers.worker import CeleryWorker, engage_counting_writes, purge_broker, quiet_after, writes_per_worker

    worker = None
    log_dir = Path(tempfile.mkdtemp(prefix="countersign-bench-"))
    crm_url, _, crm_name = scratch_database(url, "_crm")
    try:
        call_command("migrate", verbosity=0)
        purge_broker()
        if args.store == "sql":
            recreate(admin_url, crm_name)
            worker = CeleryWorker(
                database_url=url,
                log_dir=log_dir,
                name="bench-worker",
                concurrency=args.workers,
                settings_module="config.settings.local",
                env={"DEBUG": "false", "LOG_LEVEL": "WARNING", "CRM_DATABASE_URL": crm_url},
            )
            sql_bench(args.count, url=url, crm_url=crm_url, worker=worker, log_dir=log_dir)
            return
        print(f"seeding {args.count} + {args.count} + {args.stop_count} approved proposals ...", flush=True)
        made = seed({"raw": args.count, "worker": args.count, "stop": args.stop_count})

        raw_batch, raw_ids = made["raw"]
        raw_seconds = raw_loop(url, raw_batch, raw_ids)
        assert applied(raw_batch) == len(raw_ids)

        worker = CeleryWorker(
            database_url=url,
            log_dir=log_dir,
            name="bench-worker",
            concurrency=args.workers,
            settings_module="config.settings.local",
            env={"DEBUG": "false", "LOG_LEVEL": "WARNING"},
        )
        worker.start(timeout=120)
        batch_id, ids = made["worker"]
        started = time.perf_counter()
        jobs.send(jobs.APPLY, args=[ids])
        # Polled gently: on two cores, counting thousands of changes many times a second would take
        # time from the workers being measured.
        wait_for(batch_id, len(ids), timeout=900, interval=0.2)
        worker_seconds = time.perf_counter() - started

        stop_batch, stop_ids = made["stop"]
        ops = User.objects.create_user("bench-ops", password=None)
        jobs.send(jobs.APPLY, args=[stop_ids])
        while applied(stop_batch) < len(stop_ids) // 4:
            time.sleep(0.005)
        switch, before = engage_counting_writes(
            lambda: stop_engage(
                scope=StopScope.BATCH, batch=Batch.objects.get(pk=stop_batch), reason="bench", actor=Actor.user(ops)
            ),
            batch_id=stop_batch,
        )
        last, halted_in = quiet_after(lambda: applied(stop_batch), for_seconds=2.0)
        after = writes_per_worker(stop_batch)
        slipped = {process: after[process] - before.get(process, 0) for process in after}
        held = len(stop_ids) - last
        stop_release(switch=switch, user=ops)
        wait_for(stop_batch, len(stop_ids), timeout=900)

        every = [*raw_ids, *ids, *stop_ids]
        changes = Change.objects.filter(proposal_id__in=every)
        exactly_once = changes.count() == len(every) == changes.values("proposal_id").distinct().count()
        checked, broken = audit_verify_chain()

        raw_rate, worker_rate = len(raw_ids) / raw_seconds, len(ids) / worker_seconds
        print()
        print(f"raw psycopg loop : {len(raw_ids):>6} in {raw_seconds:6.2f} s = {raw_rate:6.0f} writes/s, 1 connection")
        print(
            f"celery apply     : {len(ids):>6} in {worker_seconds:6.2f} s = {worker_rate:6.0f} writes/s,"
            f" {args.workers} worker processes"
        )
        print(f"ratio            : {worker_rate / raw_rate:.0%} of raw (target >= 40%; 20,000 in <= 30 s)")
        print(f"stop part-way    : {len(stop_ids) - held} of {len(stop_ids)} written, {held} held until release")
        for process in sorted(after):
            print(f"  written after the stop committed by {process}: {slipped[process]} (target <= 1)")
        print(
            f"  time to halt (stop commit to last write seen, 10 ms polls): {halted_in * 1000:.0f} ms (target <= 1 s)"
        )
        print(f"after release    : {applied(stop_batch)} of {len(stop_ids)} applied")
        print(f"exactly once     : {'yes' if exactly_once else 'NO'}, {changes.count()} changes for {len(every)}")
        print(f"audit chain      : {checked} events, {'intact' if broken is None else f'BROKEN at {broken}'}")
    finally:
        if worker is not None:
            worker.stop()
        shutil.rmtree(log_dir, ignore_errors=True)
        connections.close_all()
        recreate(admin_url, name, create=False)
        recreate(admin_url, crm_name, create=False)


def worker_run(batch: tuple[int, list[int]]) -> float:
    """Queue a batch's proposals for the worker; the seconds until every one has its Change."""
    from approvals import jobs

    batch_id, ids = batch
    started = time.perf_counter()
    jobs.send(jobs.APPLY, args=[ids])
    # Polled gently: on two cores, counting thousands of changes many times a second would take
    # time from the workers being measured.
    wait_for(batch_id, len(ids), timeout=1800, interval=0.2)
    return time.perf_counter() - started


def sql_bench(count: int, *, url: str, crm_url: str, worker: Any, log_dir: Path) -> None:
    """The raw loop across two databases, the `sql` connector and the built-in store, `count` each."""
    import psycopg
    from django.core.management import call_command

    from audit.services import audit_verify_chain
    from records.models import Change
    from tests.helpers.crm import STORES_FILE

    print(f"seeding 3 x {count} approved proposals, {2 * count} contacts in the CRM database ...", flush=True)
    made = seed({"raw": count, "sql": count, "builtin": count}, outside={"raw", "sql"})
    crm_seed(crm_url, made["raw"][1] + made["sql"][1])

    raw_seconds = raw_sql_loop(url, crm_url, *made["raw"])
    assert applied(made["raw"][0]) == count

    worker.start(timeout=120)
    builtin_seconds = worker_run(made["builtin"])

    os.environ["CRM_DATABASE_URL"] = crm_url
    stores = log_dir / "stores.yaml"
    stores.write_text(STORES_FILE, encoding="utf-8")
    call_command("load_stores", str(stores), verbosity=0)
    time.sleep(2)  # the worker's processes read the bindings again (COUNTERSIGN_STORES_REFRESH_SECONDS)
    sql_seconds = worker_run(made["sql"])

    every = made["raw"][1] + made["sql"][1] + made["builtin"][1]
    changes = Change.objects.filter(proposal_id__in=every)
    exactly_once = changes.count() == len(every) == changes.values("proposal_id").distinct().count()
    with psycopg.connect(crm_url) as crm:
        written = crm.execute(
            "SELECT count(*) FROM crm_contacts WHERE postal_address <> %s AND row_version = 2", [OLD_ADDRESS]
        ).fetchone()
    checked, broken = audit_verify_chain()

    raw_rate, sql_rate, builtin_rate = count / raw_seconds, count / sql_seconds, count / builtin_seconds
    print()
    print(f"raw psycopg loop : {count:>6} in {raw_seconds:6.2f} s = {raw_rate:6.0f} writes/s, two databases by hand")
    print(
        f"sql connector    : {count:>6} in {sql_seconds:6.2f} s = {sql_rate:6.0f} writes/s, {worker.concurrency} procs"
    )
    print(f"built-in store   : {count:>6} in {builtin_seconds:6.2f} s = {builtin_rate:6.0f} writes/s, same run")
    print(f"ratio to raw     : {sql_rate / raw_rate:.0%} of raw (target >= 40%)")
    print(f"ratio to built-in: built-in is {builtin_rate / sql_rate:.2f}x the sql connector (target <= 2x)")
    print(f"in the CRM       : {written[0] if written else 0} of {2 * count} contacts at their new address, version 2")
    print(f"exactly once     : {'yes' if exactly_once else 'NO'}, {changes.count()} changes for {len(every)}")
    print(f"audit chain      : {checked} events, {'intact' if broken is None else f'BROKEN at {broken}'}")


if __name__ == "__main__":
    main()
