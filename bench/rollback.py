"""Undoing a 20,000-change batch on PostgreSQL, beside a raw psycopg loop doing the same restores.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/NAME .venv/bin/python bench/rollback.py [--count 20000]

In a scratch database (NAME_rollback_bench, created and dropped here), two batches of `count` applied
address changes each (customers at version 2, their Changes, their applied proposals):
1. the raw baseline, one psycopg connection, per row: lock the customer, compare it with what the
   change wrote, put the old value back, insert the revert change, append the chained audit event,
   commit;
2. the other batch undone through the product: `undo_job_start` (the batch's stop switch, the plan
   fixed newest first) then `undo_job_run` (chunks of COUNTERSIGN_UNDO_CHUNK_SIZE, each one
   transaction: records locked, compared, restored, revert Changes and `change.reverted` events,
   proposals moved to `reverted` with their own events, follow-ups checked), in this process.
Then both are checked: every customer back at its old address, one revert per change, the chain intact.
Targets: the product at least 40% of the raw rate, and the whole batch in at most 30 s.
"""

import argparse
import hashlib
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.seeding import OLD_ADDRESS, address_batch, recreate, scratch_database  # noqa: E402


def seed_applied_batch(workflow, label: str, first_number: int, count: int) -> int:  # type: ignore[no-untyped-def]
    """`count` customers whose address an AI batch changed: the state right after the batch applied."""
    from django.utils import timezone

    from approvals.models import Proposal, ProposalStatus
    from records.models import Change

    batch, proposals = address_batch(
        workflow,
        label,
        first_number,
        count,
        customer=lambda n: {"shipping_address": f"{n} Harbour Road", "version": 2},
        status=ProposalStatus.APPLIED,
    )
    now = timezone.now()
    changes = Change.objects.bulk_create(
        (
            Change(
                record_type="customer",
                record_id=proposal.record_id,
                action="update",
                before={"shipping_address": OLD_ADDRESS},
                after=proposal.changes,
                version_before=1,
                version_after=2,
                proposal_id=proposal.pk,
                batch_id=batch.pk,
                workflow_slug=workflow.slug,
                prompt_version="bench@1",
                applied_at=now,
                applied_by="bench-worker",
            )
            for proposal in proposals
        ),
        batch_size=2000,
    )
    for proposal, change in zip(proposals, changes, strict=True):
        proposal.change_id = change.id
    Proposal.objects.bulk_update(proposals, ["change_id"], batch_size=2000)
    return batch.pk


def settle(url: str) -> None:
    """Start both runs from a quiet database: freshly seeded rows vacuumed (hint bits set), statistics
    current and a checkpoint taken, so neither run pays for the seeding."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")


def raw_loop(url: str, batch_id: int) -> tuple[float, int]:
    """Each change undone by hand in one connection, a transaction per row; returns (seconds, conflicts)."""
    import psycopg
    from psycopg.types.json import Jsonb

    from audit.services import _CHAIN_LOCK_KEY

    conflicts = 0
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id, record_id, before, after, proposal_id FROM records_change WHERE batch_id = %s"
            " ORDER BY applied_at DESC, version_after DESC",
            [batch_id],
        ).fetchall()
        conn.commit()
        started = time.perf_counter()
        for change_id, record_id, before, after, proposal_id in rows:
            now = datetime.now(UTC)
            occurred = now.replace(microsecond=(now.microsecond // 1000) * 1000)
            row = conn.execute(
                "SELECT id, version, shipping_address FROM records_customer WHERE record_id = %s FOR UPDATE",
                [record_id],
            ).fetchone()
            assert row is not None
            customer_id, version, current = row
            if current != after["shipping_address"]:
                conflicts += 1
                conn.rollback()
                continue
            old_value = before["shipping_address"]
            conn.execute(
                "UPDATE records_customer SET shipping_address = %s, version = %s, updated_at = %s WHERE id = %s",
                [old_value, version + 1, now, customer_id],
            )
            revert_id = uuid.uuid4()
            conn.execute(
                "INSERT INTO records_change (id, record_type, record_id, action, before, after, version_before,"
                " version_after, proposal_id, batch_id, workflow_slug, prompt_version, reverts_id, applied_at,"
                " applied_by) VALUES (%s, 'customer', %s, 'revert', %s, %s, %s, %s, %s, %s, 'bench-addresses',"
                " 'bench@1', %s, %s, 'raw')",
                [
                    revert_id,
                    record_id,
                    Jsonb({"shipping_address": current}),
                    Jsonb({"shipping_address": old_value}),
                    version,
                    version + 1,
                    proposal_id,
                    batch_id,
                    change_id,
                    now,
                ],
            )
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
            head = conn.execute("SELECT hash FROM audit_auditevent ORDER BY id DESC LIMIT 1").fetchone()
            previous = head[0] if head else "0" * 64
            details = {"reverts": str(change_id), "undoes": "update"}
            content = {
                "occurred_at": occurred.isoformat(timespec="milliseconds"),
                "actor_kind": "system",
                "actor_id": "",
                "actor_label": "raw",
                "action": "change.reverted",
                "record_type": "customer",
                "record_id": record_id,
                "field": "shipping_address",
                "old_value": current,
                "new_value": old_value,
                "proposal_id": proposal_id,
                "change_id": str(revert_id),
                "batch_id": batch_id,
                "workflow_slug": "bench-addresses",
                "model_name": "",
                "model_version": "",
                "prompt_version": "bench@1",
                "approver_label": "",
                "decided_at": None,
                "reason": "bench",
                "details": details,
            }
            digest = hashlib.sha256(
                previous.encode() + json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
            ).hexdigest()
            conn.execute(
                "INSERT INTO audit_auditevent (occurred_at, actor_kind, actor_id, actor_label, action, record_type,"
                " record_id, field, old_value, new_value, proposal_id, change_id, batch_id, workflow_slug,"
                " model_name, model_version, prompt_version, approver_label, decided_at, reason, details,"
                " prev_hash, hash) VALUES (%s, 'system', '', 'raw', 'change.reverted', 'customer', %s,"
                " 'shipping_address', %s, %s, %s, %s, %s, 'bench-addresses', '', '', 'bench@1', '', NULL,"
                " 'bench', %s, %s, %s)",
                [
                    occurred,
                    record_id,
                    Jsonb(current),
                    Jsonb(old_value),
                    proposal_id,
                    revert_id,
                    batch_id,
                    Jsonb(details),
                    previous,
                    digest,
                ],
            )
            conn.commit()
        return time.perf_counter() - started, conflicts


def restored(batch_id: int) -> tuple[int, int]:
    """(customers of the batch back at the old address, revert changes stored for the batch)."""
    from records.models import Change
    from records.store import get_store

    record_ids = Change.objects.filter(batch_id=batch_id, action="update").values_list("record_id", flat=True)
    states = get_store("customer").fetch_many("customer", record_ids, ["shipping_address"]).values()
    back = sum(1 for state in states if state.values["shipping_address"] == OLD_ADDRESS and state.version == 3)
    return back, Change.objects.filter(batch_id=batch_id, action="revert").count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20000, help="changes in each batch")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    url, admin_url, name = scratch_database(os.environ.get("DATABASE_URL", ""), "_rollback_bench")
    recreate(admin_url, name)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    os.environ["DEBUG"] = "false"

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    from approvals.models import UndoScope, Workflow
    from approvals.undo.selectors import UndoSelection
    from approvals.undo.services import undo_job_run, undo_job_start
    from audit.services import Actor, audit_verify_chain

    try:
        call_command("migrate", verbosity=0)
        owner = User.objects.create_user("bench-owner", password=None)
        ops = User.objects.create_user("bench-ops", password=None)
        ops.groups.add(Group.objects.create(name=settings.COUNTERSIGN["OPS_MANAGER_GROUP"]))
        workflow = Workflow.objects.create(
            slug="bench-addresses", name="Bench addresses", owner=owner, lane="write", stage="live", actions=["update"]
        )
        print(f"seeding two applied batches of {args.count} address changes ...", flush=True)
        raw_batch = seed_applied_batch(workflow, "raw", 100000, args.count)
        product_batch = seed_applied_batch(workflow, "product", 500000, args.count)
        settle(url)

        raw_seconds, raw_conflicts = raw_loop(url, raw_batch)
        raw_rate = args.count / raw_seconds

        from approvals.models import Batch

        selection = UndoSelection(scope=UndoScope.BATCH, batch=Batch.objects.get(pk=product_batch))
        started = time.perf_counter()
        job = undo_job_start(selection=selection, actor=Actor.user(ops), user=ops, reason="bench", queue=False)
        planned = time.perf_counter()
        job = undo_job_run(job_id=job.pk, worker="bench")
        finished = time.perf_counter()
        product_seconds = finished - started
        product_rate = args.count / product_seconds

        raw_back, raw_reverts = restored(raw_batch)
        back, reverts = restored(product_batch)
        checked, broken = audit_verify_chain()

        print()
        print(
            f"raw psycopg loop : {args.count:>6} undone in {raw_seconds:6.2f} s = {raw_rate:7.0f} changes/s"
            f" (1 connection, a transaction per row; {raw_conflicts} conflicts)"
        )
        print(
            f"undo job         : {args.count:>6} undone in {product_seconds:6.2f} s = {product_rate:7.0f} changes/s"
            f" (start and plan {planned - started:.2f} s, run {finished - planned:.2f} s,"
            f" chunks of {settings.COUNTERSIGN['UNDO_CHUNK_SIZE']}; {job.conflicts} conflicts)"
        )
        print(f"ratio            : {product_rate / raw_rate:6.1%} of raw   (target >= 40%)")
        print(f"time             : {product_seconds:6.2f} s for {args.count}   (target <= 30 s)")
        print(
            f"restored         : raw {raw_back}/{args.count} ({raw_reverts} reverts),"
            f" undo job {back}/{args.count} ({reverts} reverts, job {job.status}: {job.reverted} reverted)"
        )
        print(f"audit chain      : {checked} events, {'intact' if broken is None else f'BROKEN at {broken}'}")
        if back != args.count or reverts != args.count or broken is not None:
            raise SystemExit(1)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            recreate(admin_url, name, create=False)


if __name__ == "__main__":
    main()
