"""Apply throughput and the stop switch, on PostgreSQL and Redis.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/NAME REDIS_URL=redis://127.0.0.1:6379/N \\
        .venv/bin/python bench/apply.py [--count 20000] [--workers 2]

In a scratch database (NAME_bench, created and dropped here):
1. the raw baseline: one psycopg connection doing each row's work by hand (lock the record, update
   it, insert the change, append the chained audit event, mark the proposal applied, commit);
2. the same number of approved single-field updates applied by a Celery worker with 2 processes,
   through the real task, services and audit chain;
3. a second batch, stopped part-way: writes committed after the stop per worker process, and the
   time from the stop's commit to the last write; then release, and the rest applies.
Targets: the worker at least 40% of the raw rate, 20,000 in at most 30 s; after the stop at most one
write per worker process, halted within 1 s.
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def scratch_database(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise SystemExit("bench/apply.py needs DATABASE_URL=postgres://...")
    name = parts.path.lstrip("/") + "_bench"
    admin = urlunsplit(parts._replace(path="/postgres"))
    return urlunsplit(parts._replace(path=f"/{name}")), admin


def recreate(admin_url: str, name: str, *, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            admin.execute(f'CREATE DATABASE "{name}"')


def seed(count: int, *, stage_batches: list[str]) -> dict[str, tuple[int, list[int]]]:
    """A live workflow, and for each named batch `count` customers with one approved address change each."""
    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from approvals.models import Batch, Proposal, ProposalStatus, Workflow
    from records.models import Customer

    owner = User.objects.create_user("bench-owner", password=None)
    workflow = Workflow.objects.create(
        slug="bench-addresses",
        name="Bench addresses",
        owner=owner,
        lane="write",
        stage="live",
        approver_group=Group.objects.create(name="bench-approvers"),
        actions=["update"],
    )
    made: dict[str, tuple[int, list[int]]] = {}
    number = 100000
    for label, size in [(label, count) for label in stage_batches]:
        batch = Batch.objects.create(workflow=workflow, name=label, run_id=f"bench-{label}", expected_size=size)
        numbers = range(number, number + size)
        number += size
        Customer.objects.bulk_create(
            (
                Customer(record_id=f"CUS-{n}", full_name=f"Customer {n}", shipping_address="4 Old Mill Lane")
                for n in numbers
            ),
            batch_size=2000,
        )
        now = timezone.now()
        proposals = Proposal.objects.bulk_create(
            (
                Proposal(
                    workflow=workflow,
                    batch=batch,
                    record_type="customer",
                    record_id=f"CUS-{n}",
                    action="update",
                    changes={"shipping_address": f"{n} Harbour Road"},
                    base={"shipping_address": "4 Old Mill Lane"},
                    reason="bench",
                    confidence=0.9,
                    model_name="bench",
                    model_version="1",
                    prompt_version="bench@1",
                    status=ProposalStatus.APPROVED,
                    approved_at=now,
                    updated_at=now,
                )
                for n in numbers
            ),
            batch_size=2000,
        )
        made[label] = (batch.pk, [p.pk for p in proposals])
    return made


def raw_loop(url: str, batch_id: int, proposal_ids: list[int]) -> float:
    """Each row's work by hand in one connection; returns the elapsed seconds."""
    import psycopg
    from psycopg.types.json import Jsonb

    from audit.services import _CHAIN_LOCK_KEY

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id, record_id, changes FROM approvals_proposal WHERE id = ANY(%s) ORDER BY id", [proposal_ids]
        ).fetchall()
        conn.commit()
        started = time.perf_counter()
        for proposal_id, record_id, changes in rows:
            now = datetime.now(UTC)
            occurred = now.replace(microsecond=(now.microsecond // 1000) * 1000)
            new_value = changes["shipping_address"]
            customer_id, version, old_value = conn.execute(
                "SELECT id, version, shipping_address FROM records_customer WHERE record_id = %s FOR UPDATE",
                [record_id],
            ).fetchone()
            conn.execute(
                "UPDATE records_customer SET shipping_address = %s, version = %s, updated_at = %s WHERE id = %s",
                [new_value, version + 1, now, customer_id],
            )
            change_id = uuid.uuid4()
            conn.execute(
                "INSERT INTO records_change (id, record_type, record_id, action, before, after, version_before,"
                " version_after, proposal_id, batch_id, workflow_slug, prompt_version, applied_at, applied_by)"
                " VALUES (%s, 'customer', %s, 'update', %s, %s, %s, %s, %s, %s, 'bench-addresses', 'bench@1', %s, 'raw')",
                [
                    change_id,
                    record_id,
                    Jsonb({"shipping_address": old_value}),
                    Jsonb({"shipping_address": new_value}),
                    version,
                    version + 1,
                    proposal_id,
                    batch_id,
                    now,
                ],
            )
            conn.execute(
                "UPDATE approvals_proposal SET status = 'applied', change_id = %s, updated_at = %s WHERE id = %s",
                [change_id, now, proposal_id],
            )
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
                "old_value": old_value,
                "new_value": new_value,
                "proposal_id": proposal_id,
                "change_id": str(change_id),
                "batch_id": batch_id,
                "workflow_slug": "bench-addresses",
                "model_name": "bench",
                "model_version": "1",
                "prompt_version": "bench@1",
                "approver_label": "",
                "decided_at": None,
                "reason": "bench",
                "details": {},
            }
            digest = hashlib.sha256(
                previous.encode() + json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
            ).hexdigest()
            conn.execute(
                "INSERT INTO audit_auditevent (occurred_at, actor_kind, actor_id, actor_label, action, record_type,"
                " record_id, field, old_value, new_value, proposal_id, change_id, batch_id, workflow_slug,"
                " model_name, model_version, prompt_version, approver_label, decided_at, reason, details,"
                " prev_hash, hash) VALUES (%s, 'worker', 'raw', 'raw', 'change.applied', 'customer', %s,"
                " 'shipping_address', %s, %s, %s, %s, %s, 'bench-addresses', 'bench', '1', 'bench@1', '', NULL,"
                " 'bench', %s, %s, %s)",
                [
                    occurred,
                    record_id,
                    Jsonb(old_value),
                    Jsonb(new_value),
                    proposal_id,
                    change_id,
                    batch_id,
                    Jsonb({}),
                    previous,
                    digest,
                ],
            )
            conn.commit()
        return time.perf_counter() - started


def applied(batch_id: int) -> int:
    from records.models import Change

    return Change.objects.filter(batch_id=batch_id).count()


def per_worker(batch_id: int) -> Counter:
    from django.db.models import Count

    from records.models import Change

    return Counter(dict(Change.objects.filter(batch_id=batch_id).values_list("applied_by").annotate(n=Count("id"))))


def wait_for(batch_id: int, total: int, *, timeout: float, interval: float = 0.05) -> float:
    started = time.perf_counter()
    while applied(batch_id) < total:
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"batch {batch_id}: only {applied(batch_id)} of {total} applied after {timeout}s")
        time.sleep(interval)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20000, help="approved updates to apply (and for the raw loop)")
    parser.add_argument("--stop-count", type=int, default=6000, help="the batch that is stopped part-way")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    if not os.environ.get("REDIS_URL"):
        raise SystemExit("bench/apply.py needs REDIS_URL=redis://... (the production broker)")
    url, admin_url = scratch_database(os.environ.get("DATABASE_URL", ""))
    name = urlsplit(url).path.lstrip("/")
    recreate(admin_url, name)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    os.environ["DEBUG"] = "false"

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction

    from approvals.models import StopScope
    from approvals.services.stops import stop_engage, stop_release
    from audit.services import Actor, audit_verify_chain
    from config.celery import app as celery_app
    from tests.worker import CeleryWorker, purge_broker

    worker = None
    try:
        call_command("migrate", verbosity=0)
        purge_broker()
        print(
            f"seeding {args.count} raw + {args.count} worker + {args.stop_count} stop-batch proposals ...", flush=True
        )
        made = seed(args.count, stage_batches=["raw", "worker"])
        made.update(seed_more(args.stop_count))

        raw_batch, raw_ids = made["raw"]
        raw_seconds = raw_loop(url, raw_batch, raw_ids)
        assert applied(raw_batch) == len(raw_ids)
        raw_rate = len(raw_ids) / raw_seconds

        log_dir = Path(tempfile.mkdtemp(prefix="countersign-bench-"))
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
        celery_app.send_task("approvals.apply_approved", args=[ids])
        worker_seconds = wait_for(batch_id, len(ids), timeout=600)
        worker_seconds = time.perf_counter() - started
        worker_rate = len(ids) / worker_seconds

        stop_batch, stop_ids = made["stop"]
        celery_app.send_task("approvals.apply_approved", args=[stop_ids])
        while applied(stop_batch) < len(stop_ids) // 4:
            time.sleep(0.005)
        from django.contrib.auth.models import User

        from approvals.models import Batch

        ops = User.objects.create_user("bench-ops", password=None)
        with transaction.atomic():
            before = per_worker(stop_batch)
            switch = stop_engage(
                scope=StopScope.BATCH, batch=Batch.objects.get(pk=stop_batch), reason="bench", actor=Actor.user(ops)
            )
        engaged_at = time.perf_counter()
        last, last_change = applied(stop_batch), engaged_at
        while time.perf_counter() - last_change < 2.0:
            time.sleep(0.01)
            now_count = applied(stop_batch)
            if now_count != last:
                last, last_change = now_count, time.perf_counter()
        after = per_worker(stop_batch)
        slipped = {w: after[w] - before.get(w, 0) for w in after if after[w] - before.get(w, 0)}
        halted_in = last_change - engaged_at
        held = len(stop_ids) - last
        stop_release(switch=switch, user=ops)
        wait_for(stop_batch, len(stop_ids), timeout=600)

        from records.models import Change

        every = [*raw_ids, *ids, *stop_ids]
        changes = Change.objects.filter(proposal_id__in=every)
        exactly_once = changes.count() == len(every) == changes.values("proposal_id").distinct().count()
        checked, broken = audit_verify_chain()

        print()
        print(
            f"raw psycopg loop  : {len(raw_ids):>6} rows in {raw_seconds:6.2f} s = {raw_rate:7.0f} rows/s (1 connection)"
        )
        print(
            f"celery apply      : {len(ids):>6} rows in {worker_seconds:6.2f} s = {worker_rate:7.0f} rows/s"
            f" ({args.workers} worker processes)"
        )
        print(f"ratio             : {worker_rate / raw_rate:6.1%} of raw   (target >= 40%, and <= 30 s for 20,000)")
        print(
            f"stop part-way     : stopped at {len(stop_ids) - held - sum(slipped.values())} of {len(stop_ids)},"
            f" {held} held until release"
        )
        workers_seen = sorted(after)
        for name_ in workers_seen:
            print(f"  writes after the stop committed, {name_}: {slipped.get(name_, 0)}   (target <= 1)")
        print(
            f"  time to halt (stop commit -> last write seen, 10 ms polls): {halted_in * 1000:.0f} ms   (target <= 1000 ms)"
        )
        print(f"after release     : all {len(stop_ids)} applied")
        print(
            f"exactly once      : {'yes' if exactly_once else 'NO'} ({changes.count()} changes for {len(every)} proposals)"
        )
        print(f"audit chain       : {checked} events, {'intact' if broken is None else f'BROKEN at {broken}'}")
    finally:
        if worker is not None:
            worker.stop()
        from django.db import connections

        connections.close_all()
        if not args.keep:
            recreate(admin_url, name, drop_only=True)


def seed_more(count: int) -> dict[str, tuple[int, list[int]]]:
    from django.utils import timezone

    from approvals.models import Batch, Proposal, ProposalStatus, Workflow
    from records.models import Customer

    workflow = Workflow.objects.get(slug="bench-addresses")
    batch = Batch.objects.create(workflow=workflow, name="stop", run_id="bench-stop", expected_size=count)
    numbers = range(900000, 900000 + count)
    Customer.objects.bulk_create(
        (
            Customer(record_id=f"CUS-{n}", full_name=f"Customer {n}", shipping_address="4 Old Mill Lane")
            for n in numbers
        ),
        batch_size=2000,
    )
    now = timezone.now()
    proposals = Proposal.objects.bulk_create(
        (
            Proposal(
                workflow=workflow,
                batch=batch,
                record_type="customer",
                record_id=f"CUS-{n}",
                action="update",
                changes={"shipping_address": f"{n} Harbour Road"},
                base={"shipping_address": "4 Old Mill Lane"},
                reason="bench",
                confidence=0.9,
                model_name="bench",
                model_version="1",
                prompt_version="bench@1",
                status=ProposalStatus.APPROVED,
                approved_at=now,
                updated_at=now,
            )
            for n in numbers
        ),
        batch_size=2000,
    )
    return {"stop": (batch.pk, [p.pk for p in proposals])}


if __name__ == "__main__":
    main()
