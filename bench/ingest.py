"""Ingest benchmark: the pipeline API under gunicorn on PostgreSQL, beside raw psycopg inserts.

    .venv/bin/python bench/ingest.py [--proposals 20000] [--port 18310]

1. Creates a throwaway PostgreSQL database (BENCH_DATABASE_URL, default .../cs_h3_bench), migrates it,
   and loads a live write-lane workflow, 2,000 customers and a service account.
2. Starts gunicorn (2 workers x 4 threads, as the embedded Procfile; it reads gunicorn.conf.py) on
   127.0.0.1:PORT with DEBUG off.
3. Opens a batch and submits the proposals through POST /api/v1/batches/{id}/proposals, 1000 a request,
   from one connection; then again into a second batch from two connections at once (--uploaders).
4. In the same run, inserts the same rows (each proposal and its proposal.submitted audit row, hash chain
   precomputed) with raw psycopg executemany, 1000 proposals a transaction.
5. Single POST /api/v1/proposals latency with 8 concurrent clients, beside a bare Django view on the same
   server (POST /bench/bare: no framework, no database; bench.urls, only mounted by bench.settings).
Prints both rates and the ratio, the latencies, then stops gunicorn and drops the database.
"""

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.serve import Client, start_server, stop_server  # noqa: E402

BENCH_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cs_h3_bench")
os.environ["DATABASE_URL"] = BENCH_URL
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production")

CUSTOMERS = 2000
CHUNK = 1000


def recreate_database() -> None:
    import psycopg

    url = urlparse(BENCH_URL)
    name = url.path.lstrip("/")
    admin = url._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database() -> None:
    import psycopg

    url = urlparse(BENCH_URL)
    with psycopg.connect(url._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.path.lstrip("/")}" WITH (FORCE)')


def seed() -> str:
    """A live write-lane workflow, customers, a requesting user, and a service account. Returns its token."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from approvals.intake.accounts import service_account_create
    from approvals.models import FieldPolicy, Workflow
    from audit.services import Actor
    from records.store import get_store

    call_command("migrate", verbosity=0)
    user_model = get_user_model()
    owner = user_model.objects.create_user(username="owner")
    user_model.objects.create_user(username="agent")
    workflow = Workflow.objects.create(
        slug="address-updates",
        name="Address updates",
        owner=owner,
        lane="write",
        stage="live",
        approver_group=Group.objects.create(name="support-leads"),
        actions=["update"],
    )
    for field, access in (("full_name", "read"), ("shipping_address", "suggest"), ("priority", "write")):
        FieldPolicy.objects.create(workflow=workflow, record_type="customer", field=field, access=access)
    get_store("customer").create_many(
        "customer",
        [
            (f"CUS-{10001 + n}", {"full_name": f"Customer {n}", "shipping_address": f"{n} Old Mill Lane"})
            for n in range(CUSTOMERS)
        ],
    )
    return service_account_create(workflow=workflow, name="bench", actor=Actor.system("bench")).token


def proposal(n: int) -> dict[str, Any]:
    c = n % CUSTOMERS
    return {
        "record_type": "customer",
        "record_id": f"CUS-{10001 + c}",
        "action": "update",
        "changes": {"shipping_address": f"{n} Harbour Road, Leith"},
        "base": {"shipping_address": f"{c} Old Mill Lane"},
        "reason": f"Customer asked for the new address in ticket T-{800 + n % 300}",
        "confidence": 0.93,
        "model": {"name": "gpt-x", "version": "2026-10-01"},
        "prompt_version": "address-update@7",
        "run_id": "bench-run",
        "requested_by": "agent",
        "follow_ups": [{"kind": "email_customer", "params": {"template": "address-confirmed"}}],
    }


def ingest_through_api(port: int, token: str, total: int, uploaders: int) -> tuple[float, int]:
    """Open one batch and send its proposals, 1000 a request, from `uploaders` connections at once."""
    client = Client(port, token)
    status, raw = client.request(
        "POST", "/api/v1/batches", json.dumps({"name": "bench", "run_id": "bench-run", "expected_size": total}).encode()
    )
    assert status == 201, raw
    batch_id = json.loads(raw)["id"]
    bodies = [
        json.dumps({"proposals": [proposal(n) for n in range(start, min(start + CHUNK, total))]}).encode()
        for start in range(0, total, CHUNK)
    ]
    accepted: list[int] = []
    failures: list[str] = []

    def upload(share: list[bytes]) -> None:
        connection = Client(port, token)
        for body in share:
            status, raw = connection.request("POST", f"/api/v1/batches/{batch_id}/proposals", body)
            if status != 200:
                failures.append(f"{status} {raw[:300]!r}")
                return
            accepted.append(json.loads(raw)["accepted"])

    threads = [threading.Thread(target=upload, args=(bodies[i::uploaders],)) for i in range(uploaders)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"batch upload failed: {failures[0]}")
    return elapsed, batch_id if sum(accepted) == total else -sum(accepted)


def raw_insert(batch_id: int) -> tuple[float, int]:
    """The same proposals and audit rows, inserted with psycopg executemany, 1000 proposals a transaction."""
    import psycopg
    from psycopg.types.json import Jsonb

    from approvals.models import Proposal
    from audit.models import AuditEvent
    from audit.services import event_hash

    proposal_fields = [f for f in Proposal._meta.concrete_fields if f.column != "id"]
    audit_fields = [f for f in AuditEvent._meta.concrete_fields if f.column != "id"]
    json_columns = {"changes", "base", "follow_ups", "flagged_fields", "old_value", "new_value", "details"}

    def row(obj: Any, fields: list[Any]) -> list[Any]:
        values = []
        for field in fields:
            value = getattr(obj, field.attname)
            values.append(Jsonb(value) if field.column in json_columns else value)
        return values

    proposals = list(Proposal.objects.filter(batch_id=batch_id).order_by("id"))
    events = {e.proposal_id: e for e in AuditEvent.objects.filter(action="proposal.submitted", batch_id=batch_id)}
    with psycopg.connect(BENCH_URL) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT nextval(pg_get_serial_sequence('approvals_proposal', 'id')) FROM generate_series(1, %s)",
                [len(proposals)],
            )
        ]
        last = conn.execute("SELECT hash FROM audit_auditevent ORDER BY id DESC LIMIT 1").fetchone()
        head = last[0] if last else "0" * 64
        proposal_rows, audit_rows = [], []
        for new_id, original in zip(ids, proposals, strict=True):
            event = events[original.pk]
            original.pk = new_id
            event.pk = None
            event.proposal_id = new_id
            event.prev_hash = head
            event.hash = head = event_hash(event)
            proposal_rows.append([new_id, *row(original, proposal_fields)])
            audit_rows.append(row(event, audit_fields))
        proposal_columns = ", ".join(str(f.column) for f in proposal_fields)
        audit_columns = ", ".join(str(f.column) for f in audit_fields)
        insert_proposal = (
            f"INSERT INTO approvals_proposal (id, {proposal_columns}) "
            f"VALUES ({', '.join(['%s'] * (len(proposal_fields) + 1))})"
        )
        insert_event = (
            f"INSERT INTO audit_auditevent ({audit_columns}) VALUES ({', '.join(['%s'] * len(audit_fields))})"
        )
        started = time.perf_counter()
        for start in range(0, len(proposal_rows), CHUNK):
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(insert_proposal, proposal_rows[start : start + CHUNK])
                cursor.executemany(insert_event, audit_rows[start : start + CHUNK])
        elapsed = time.perf_counter() - started
    return elapsed, len(proposal_rows)


def latencies(port: int, token: str, path: str, body: bytes, clients: int, per_client: int) -> list[float]:
    timings: list[float] = []
    lock = threading.Lock()
    failures: list[str] = []

    def run() -> None:
        client = Client(port, token)
        mine = []
        for _ in range(per_client):
            started = time.perf_counter()
            status, raw = client.request("POST", path, body)
            mine.append(time.perf_counter() - started)
            if status != 201:
                failures.append(f"{status} {raw[:200]!r}")
        with lock:
            timings.extend(mine)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{path}: {len(failures)} requests failed, e.g. {failures[0]}")
    return timings


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proposals", type=int, default=20_000)
    parser.add_argument("--port", type=int, default=18310)
    parser.add_argument("--single-posts", type=int, default=200, help="POSTs per client for the latency run")
    parser.add_argument(
        "--uploaders",
        default="1,2",
        help="comma-separated: one ingest run per value, with that many connections sending batch requests at once",
    )
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args()
    uploader_counts = [int(n) for n in args.uploaders.split(",")]

    recreate_database()
    import django

    django.setup()
    token = seed()
    from django.db import connections

    connections.close_all()
    server = start_server(args.port)
    ingests: list[tuple[int, float]] = []
    try:
        warm = Client(args.port, token)
        for n in range(20):
            warm.request("POST", "/api/v1/proposals", json.dumps(proposal(n)).encode())
            warm.request("POST", "/bench/bare", json.dumps(proposal(n)).encode())

        first_batch = 0
        for uploaders in uploader_counts:
            api_seconds, batch_id = ingest_through_api(args.port, token, args.proposals, uploaders)
            if batch_id < 0:
                raise SystemExit(f"only {-batch_id} of {args.proposals} proposals were accepted")
            ingests.append((uploaders, api_seconds))
            first_batch = first_batch or batch_id
        raw_seconds, raw_count = raw_insert(first_batch)

        body = json.dumps(proposal(7)).encode()
        api_times = latencies(args.port, token, "/api/v1/proposals", body, 8, args.single_posts)
        bare_times = latencies(args.port, token, "/bench/bare", body, 8, args.single_posts)
    finally:
        stop_server(server)

    from audit.services import audit_verify_chain

    checked, broken = audit_verify_chain()
    connections.close_all()
    if not args.keep_database:
        drop_database()

    raw_rate = raw_count / raw_seconds
    print(
        f"raw insert : {raw_count} proposals + {raw_count} audit rows in {raw_seconds:.2f} s = {raw_rate:,.0f}/s "
        f"(psycopg executemany, {CHUNK} proposals and their audit rows per transaction)"
    )
    for uploaders, api_seconds in ingests:
        api_rate = args.proposals / api_seconds
        print(
            f"API ingest : {args.proposals} proposals in {api_seconds:.2f} s = {api_rate:,.0f}/s, "
            f"{api_rate / raw_rate:.1%} of raw ({CHUNK} a request, {uploaders} uploader(s) at once; "
            f"targets: <= 8 s, >= 10% of raw)"
        )
    for label, times in (("POST /api/v1/proposals", api_times), ("POST /bench/bare (bare Django view)", bare_times)):
        print(
            f"{label:<36}: p50 {percentile(times, 0.5) * 1000:6.1f} ms  p99 {percentile(times, 0.99) * 1000:6.1f} ms "
            f"({len(times)} requests, 8 concurrent clients)"
        )
    print(f"p50 ratio  : {percentile(api_times, 0.5) / percentile(bare_times, 0.5):.1f}x the bare view")
    print(f"audit chain: {checked} events verified, {'intact' if broken is None else f'BROKEN at {broken}'}")
    print(f"machine    : load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
