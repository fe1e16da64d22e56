"""Benchmark: purge a million expired 1 KiB artifacts on PostgreSQL while proposals are being read.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/DB .venv/bin/python bench/purge.py [--count 1000000]

Works in a throwaway database next to DB (DB_purge_bench), dropped at the end. Prints:
- the purge's total time (target: at most 60 s for 1,000,000) and its longest batch;
- the p99 of reading a proposal by id (what GET /api/v1/proposals/{id} does: one indexed read of the
  proposal and its workflow) from another process, idle and during the purge (target: at most 1.5x);
- the raw baseline: the same rows deleted by plain psycopg DELETEs in batches of the same size, with no
  tombstones, no chain and no ORM, and the read p99 during that too.
"""

import argparse
import hashlib
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
CONTENT_BYTES = 1024
READ_EVERY_SECONDS = 0.005
PROPOSALS = 5000


def _bench_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}_purge_bench"))


def _admin(url: str, statement: str) -> None:
    import psycopg

    parts = urlsplit(url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(statement)


def _setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _reader(port: int, token: str, proposal_ids: list[int], ready, stop, results) -> None:  # type: ignore[no-untyped-def]
    """Another process reading proposals at a steady pace through GET /api/v1/proposals/{id}."""
    import random

    sys.path.insert(0, str(ROOT))
    from bench.serve import Client

    client = Client(port, token)
    rng = random.Random(7)
    reads: list[tuple[float, float]] = []
    next_at = time.monotonic()
    while not stop.is_set():
        started = time.monotonic()
        status, _ = client.request("GET", f"/api/v1/proposals/{rng.choice(proposal_ids)}")
        if status != 200:
            raise SystemExit(f"GET /api/v1/proposals/{{id}} answered {status}")
        reads.append((started, time.monotonic() - started))
        if len(reads) == 50:
            ready.set()
        next_at += READ_EVERY_SECONDS
        time.sleep(max(0.0, next_at - time.monotonic()))
    results.send(reads)


class Reads:
    """Reads from another process while a block of work runs; only reads started inside the block count."""

    def __init__(self, port: int, token: str, proposal_ids: list[int]) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.port, self.token = port, token
        self.proposal_ids = proposal_ids

    def __enter__(self) -> "Reads":
        self.ready, self.stop = self.context.Event(), self.context.Event()
        self.receive, send = self.context.Pipe(duplex=False)
        self.process = self.context.Process(
            target=_reader, args=(self.port, self.token, self.proposal_ids, self.ready, self.stop, send)
        )
        self.process.start()
        if not self.ready.wait(timeout=60):
            raise RuntimeError("the reader process did not start")
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.ended = time.monotonic()
        self.stop.set()
        reads = self.receive.recv()
        self.process.join(timeout=30)
        self.timings = [duration for started, duration in reads if self.started <= started <= self.ended]

    @property
    def p99(self) -> float:
        return statistics.quantiles(self.timings, n=100)[98]


def _generate_artifacts(count: int, workflow_id: int, rule_id: int) -> float:
    """COPY `count` expired 1 KiB artifacts into the table. Returns the seconds it took."""
    from django.db import connection

    started = time.perf_counter()
    now = datetime.now(UTC)
    filler = "x" * CONTENT_BYTES
    columns = (
        "id, workflow_id, workflow_slug, proposal_id, rule_id, kind, bucket, name, content, file, "
        "sha256, size, created_at, expires_at, flagged_fields, copied_from"
    )
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY audit_artifact ({columns}) FROM STDIN") as copy:
            for n in range(count):
                content = f"{n:012d}" + filler[12:]
                expires_at = now - timedelta(hours=1) + timedelta(microseconds=n * 3)
                copy.write_row(
                    (
                        uuid.uuid4(),
                        workflow_id,
                        "bench-purge",
                        None,
                        rule_id,
                        "prompt",
                        "live",
                        "",
                        content,
                        "",
                        hashlib.sha256(content.encode()).hexdigest(),
                        CONTENT_BYTES,
                        expires_at - timedelta(minutes=2),
                        expires_at,
                        "[]",
                        None,
                    )
                )
        cursor.execute("VACUUM ANALYZE audit_artifact")
    return time.perf_counter() - started


def _purge_worker(url: str, batch_size: int, start, results) -> None:  # type: ignore[no-untyped-def]
    _setup_django(url)
    from django.db import connection

    from audit.retention import artifacts_purge_expired

    connection.ensure_connection()
    start.wait()
    results.send(artifacts_purge_expired(batch_size=batch_size))


def _purge(url: str, batch_size: int, workers: int):  # type: ignore[no-untyped-def]
    """The purge as beat runs it, or `workers` of them at once (say, beat and the command overlapping)."""
    from audit.retention import PurgeReport, artifacts_purge_expired

    if workers == 1:
        return artifacts_purge_expired(batch_size=batch_size)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(workers + 1)
    pipes = [context.Pipe(duplex=False) for _ in range(workers)]
    processes = [context.Process(target=_purge_worker, args=(url, batch_size, start, send)) for _, send in pipes]
    for process in processes:
        process.start()
    start.wait()  # every worker is set up and connected: the clock starts now
    started = time.perf_counter()
    reports = [receive.recv() for receive, _ in pipes]
    seconds = time.perf_counter() - started
    for process in processes:
        process.join()
    return PurgeReport(
        purged=sum(r.purged for r in reports),
        batches=sum(r.batches for r in reports),
        files=sum(r.files for r in reports),
        seconds=seconds,
        longest_batch_seconds=max(r.longest_batch_seconds for r in reports),
    )


def _wal_position() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
        return int(cursor.fetchone()[0])


def _pace_by_tenth() -> list[float]:
    """Artifacts purged per second in each tenth of the run, from the tombstones' batch times."""
    from audit.models import AuditEvent

    batches = list(
        AuditEvent.objects.filter(action="artifacts.purged")
        .order_by("occurred_at")
        .values_list("occurred_at", "details__count")
    )
    tenth = max(1, len(batches) // 10)
    paces = []
    for start in range(0, len(batches) - tenth, tenth):
        chunk = batches[start : start + tenth + 1]
        seconds = (chunk[-1][0] - chunk[0][0]).total_seconds()
        paces.append(sum(size for _, size in chunk[1:]) / seconds if seconds else 0.0)
    return paces


def _raw_delete(url: str, batch_size: int) -> tuple[float, float, int]:
    """Plain batched DELETEs over psycopg: (total seconds, longest batch seconds, rows)."""
    import psycopg

    deleted = 0
    longest = 0.0
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            batch_started = time.perf_counter()
            with conn.transaction():
                rows = conn.execute(
                    "DELETE FROM audit_artifact WHERE id IN (SELECT id FROM audit_artifact WHERE expires_at <= now() "
                    "ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED)",
                    [batch_size],
                ).rowcount
            longest = max(longest, time.perf_counter() - batch_started)
            deleted += rows
            if rows < batch_size:
                break
    return time.perf_counter() - started, longest, deleted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000, help="expired artifacts to purge")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1, help="purges running at once (SKIP LOCKED shares the work)")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="how long to measure reads when idle")
    parser.add_argument("--skip-verify", action="store_true", help="do not walk the whole chain afterwards")
    parser.add_argument("--port", type=int, default=18790, help="where gunicorn serves the API during the run")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        print("bench/purge.py needs PostgreSQL: set DATABASE_URL=postgres://...", file=sys.stderr)
        return 2
    bench_url = _bench_url(url)
    bench_db = urlsplit(bench_url).path.lstrip("/")
    _admin(url, f'DROP DATABASE IF EXISTS "{bench_db}"')
    _admin(url, f'CREATE DATABASE "{bench_db}"')
    try:
        return _run(bench_url, args)
    finally:
        from django.db import connections

        connections.close_all()
        _admin(url, f'DROP DATABASE IF EXISTS "{bench_db}"')


def _run(url: str, args: argparse.Namespace) -> int:
    _setup_django(url)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections

    from approvals.intake.accounts import service_account_create
    from approvals.models import Proposal, RetentionRule, Workflow
    from audit.services import Actor
    from bench.serve import start_server, stop_server
    from records.store import RecordRef, get_store

    call_command("migrate", verbosity=0)
    owner = get_user_model().objects.create_user(username="owner")
    workflow = Workflow.objects.create(slug="bench-purge", name="Purge benchmark", owner=owner, lane="write")
    rule = RetentionRule.objects.create(
        workflow=workflow, kind="prompt", bucket="live", window=timedelta(minutes=2), owner=owner
    )
    customer = RecordRef("customer", "CUS-10001")
    get_store(customer.record_type).create_many(
        customer.record_type, [(customer.record_id, {"full_name": "Maria Lopez"})]
    )
    Proposal.objects.bulk_create(
        [
            Proposal(
                workflow=workflow,
                record_type="customer",
                record_id=customer.record_id,
                action="update",
                changes={"priority": "high"},
                base={"priority": "normal"},
                reason="bench",
                confidence=0.9,
                model_name="gpt-x",
                model_version="1",
                prompt_version="bench@1",
            )
            for _ in range(PROPOSALS)
        ]
    )
    proposal_ids = list(Proposal.objects.values_list("id", flat=True))
    token = service_account_create(workflow=workflow, name="bench", actor=Actor.system("bench")).token
    connections.close_all()
    # The API as it runs for real: gunicorn with the project's settings, not the test settings.
    os.environ.update({"DJANGO_SETTINGS_MODULE": "config.settings.local", "DEBUG": "false"})
    server = start_server(args.port)
    try:
        return _measure(url, args, workflow, rule, token, proposal_ids)
    finally:
        stop_server(server)


def _measure(url: str, args: argparse.Namespace, workflow: Any, rule: Any, token: str, proposal_ids: list[int]) -> int:
    from audit.models import Artifact, Tombstone
    from audit.services import audit_verify_chain

    print(
        f"PostgreSQL purge benchmark: {args.count:,} expired {CONTENT_BYTES} B artifacts, batches of {args.batch_size}"
    )
    print("The read measured is GET /api/v1/proposals/{id} through gunicorn (2 workers x 4 threads), from another")
    print("process, as the pipeline that submitted the proposal reads it.")

    seconds = _generate_artifacts(args.count, workflow.pk, rule.pk)
    print(f"  generated with COPY in {seconds:.1f}s")

    with Reads(args.port, token, proposal_ids) as idle:
        time.sleep(args.idle_seconds)
    idle_p99 = idle.p99

    load_before = os.getloadavg()
    wal_before = _wal_position()
    with Reads(args.port, token, proposal_ids) as during:
        report = _purge(url, args.batch_size, args.workers)
    wal_bytes = _wal_position() - wal_before
    load_after = os.getloadavg()
    during_p99 = during.p99
    left = Artifact.objects.count()
    tombstones = Tombstone.objects.count()
    pace = _pace_by_tenth()

    verify_seconds = None
    if not args.skip_verify:
        started = time.perf_counter()
        checked, broken = audit_verify_chain()
        verify_seconds = time.perf_counter() - started
        if broken:
            print(f"  CHAIN BROKEN at event {broken.event_id}: {broken.problem}")
            return 1

    seconds = _generate_artifacts(args.count, workflow.pk, rule.pk)
    print(f"  regenerated for the baseline in {seconds:.1f}s")
    with Reads(args.port, token, proposal_ids) as during_raw:
        raw_seconds, raw_longest, raw_rows = _raw_delete(url, args.batch_size)
    raw_p99 = during_raw.p99

    print()
    print(
        f"purge ({args.workers} worker{'s' if args.workers > 1 else ''}, SKIP LOCKED batches, "
        "a tombstone per artifact, one chained event per batch):"
    )
    print(f"  purged {report.purged:,} in {report.batches:,} batches, {left} left, {tombstones:,} tombstones")
    print(
        f"  total {report.seconds:.1f}s (target <= 60s for 1,000,000)   "
        f"longest batch {report.longest_batch_seconds * 1000:.0f} ms"
    )
    print("  artifacts per second, by tenth of the run: " + ", ".join(f"{pace:,.0f}" for pace in pace))
    print(f"  WAL written: {wal_bytes / 2**20:,.0f} MiB ({wal_bytes / max(1, report.purged):,.0f} B per artifact)")
    if verify_seconds is not None:
        print(f"  chain verified after the purge: {checked:,} events, no break ({verify_seconds:.1f}s)")
    print(f"raw baseline (psycopg DELETE ... LIMIT {args.batch_size} FOR UPDATE SKIP LOCKED, no tombstones):")
    print(f"  deleted {raw_rows:,} in {raw_seconds:.1f}s   longest batch {raw_longest * 1000:.0f} ms")
    print(f"  purge / raw delete: {report.seconds / raw_seconds:.2f}x")
    print(
        f"machine load (1-minute average, {os.cpu_count()} cores): {load_before[0]:.1f} before the purge, "
        f"{load_after[0]:.1f} after it"
    )
    print("read p99 (GET /api/v1/proposals/{id}, another process, one request every 5 ms):")
    print(f"  idle {idle_p99 * 1000:.2f} ms ({len(idle.timings):,} reads)")
    print(
        f"  during purge {during_p99 * 1000:.2f} ms ({len(during.timings):,} reads)   "
        f"ratio {during_p99 / idle_p99:.2f}x (target <= 1.5x)"
    )
    print(
        f"  during raw delete {raw_p99 * 1000:.2f} ms ({len(during_raw.timings):,} reads)   "
        f"ratio {raw_p99 / idle_p99:.2f}x"
    )
    return 0 if report.purged == args.count and left == 0 and tombstones == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
