"""Benchmark of `/metrics` on PostgreSQL at 1,000,000 proposals, printed beside the raw SQL of the same
aggregates executed straight through psycopg on the same database in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cs .venv/bin/python bench/metrics.py [--proposals 1000000]

The proposals are those of the quality benchmark (5 workflows, 5 prompt versions each, 90 days: most
applied, some rejected, in conflict, undone or pending); the trail holds their events to match (each
submission, decision, conflict and undo, and a Change with its `change.applied` event for each write),
inserted in bulk: each event's hash is a random unique value, as nothing here verifies the chain.

It prints, in this order:
- the first scrape on a trail never folded: it folds one chunk (`FOLD_CHUNK` events) and says how far
  behind the totals still are;
- beat's catch-up (`approvals.fold_metrics`), which folds the rest chunk by chunk (the cold fold);
- `REQUESTS` scrapes through the whole Django stack, each after 100 new events reached the trail (so
  each scrape folds something), beside the statements one of them ran, executed through psycopg;
- what the three history aggregates cost when recounted over the whole trail at every scrape (as
  `/metrics` did before the running totals), through psycopg, rolled back.

It works in its own database, named after DATABASE_URL's with `_bench_metrics` appended, dropped and
recreated on every run. Target: p95 <= 200 ms.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.quality import WORKFLOWS, seed, set_up_django  # noqa: E402
from bench.review import REQUESTS, percentile, summary  # noqa: E402
from bench.seeding import recreate, scratch_database  # noqa: E402

TOKEN = "bench-metrics-token"  # noqa: S105
NEW_EVENTS = 100

# The columns every bench event fills, and the values they share.
EVENT = """
INSERT INTO audit_auditevent (
    occurred_at, actor_kind, actor_id, actor_label, action, record_type, record_id, field, proposal_id,
    change_id, workflow_slug, model_name, model_version, prompt_version, approver_label, decided_at, reason,
    details, prev_hash, hash
)
SELECT {at}, {actor_kind}, '', '', {action}, 'customer', p.record_id, '', p.id, {change_id}, w.slug, p.model_name,
       p.model_version, p.prompt_version, '', p.decided_at, '', '{{}}', '', replace(gen_random_uuid()::text, '-', '')
FROM approvals_proposal p JOIN approvals_workflow w ON w.id = p.workflow_id {join}
WHERE {where}
"""

CHANGES = """
INSERT INTO records_change (
    id, record_type, record_id, action, before, after, version_before, version_after, proposal_id, workflow_slug,
    prompt_version, applied_at, applied_by, in_flight
)
SELECT gen_random_uuid(), 'customer', p.record_id, 'update', p.base, p.changes, 1, 2, p.id, w.slug, p.prompt_version,
       p.approved_at + (p.id % 600) * interval '1 second', 'bench-worker', false
FROM approvals_proposal p JOIN approvals_workflow w ON w.id = p.workflow_id
WHERE p.status IN ('applied', 'reverted')
"""


def _events(action: str, where: str, *, at: str = "p.created_at", actor_kind: str = "'user'", join: str = "") -> str:
    change_id = "c.id" if join else "NULL"
    return EVENT.format(at=at, actor_kind=actor_kind, action=f"'{action}'", change_id=change_id, join=join, where=where)


TRAIL = [
    _events("proposal.submitted", "true", actor_kind="'service_account'"),
    _events(
        "proposal.approved",
        "p.approved_at IS NOT NULL",
        at="p.approved_at",
        actor_kind="CASE WHEN p.decided_by_id IS NULL THEN 'system' ELSE 'user' END",
    ),
    _events("proposal.rejected", "p.status = 'rejected'", at="p.decided_at"),
    _events("proposal.conflict", "p.status = 'conflict'", at="p.approved_at", actor_kind="'worker'"),
    _events(
        "change.applied",
        "true",
        at="c.applied_at",
        actor_kind="'worker'",
        join="JOIN records_change c ON c.proposal_id = p.id",
    ),
    _events("proposal.reverted", "p.status = 'reverted'", at="p.approved_at + interval '1 day'"),
]


def seed_trail() -> int:
    """The Changes and the trail of every proposal; answers the number of events."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(CHANGES)
        for statement in TRAIL:
            cursor.execute(statement)
        cursor.execute("VACUUM ANALYZE records_change")
        cursor.execute("VACUUM ANALYZE audit_auditevent")
        cursor.execute("SELECT count(*) FROM audit_auditevent")
        return int(cursor.fetchone()[0])


def append_events() -> None:
    """`NEW_EVENTS` submissions reach the trail, as between two scrapes."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            _events("proposal.submitted", f"p.id <= {NEW_EVENTS}", at="now()", actor_kind="'service_account'")
        )


def scrape(client) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.status_code
    return elapsed, len(response.content)


def time_statements(dsn: str, statements: list[str], *, repeat: int, rollback: bool) -> list[float]:
    """`statements` straight through psycopg, each run one transaction (rolled back if asked)."""
    import psycopg

    timings = []
    with psycopg.connect(dsn) as connection:
        for _ in range(repeat):
            started = time.perf_counter()
            with connection.transaction(force_rollback=rollback):
                for statement in statements:
                    cursor = connection.execute(statement)
                    if cursor.description is not None:
                        cursor.fetchall()
            timings.append((time.perf_counter() - started) * 1000)
    return timings


def unfolded() -> int:
    """Trail event ids past the fold's cursor."""
    from approvals.models import MetricsCursor
    from audit.models import AuditEvent

    head = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    return head - MetricsCursor.objects.get(pk=1).audit_event_id


def recount_statements() -> list[str]:
    """The three history aggregates over the whole trail, as literal SQL."""
    from django.db import connection

    from approvals.noticing.tallies import fold_statements, tallies_catch_up, tallies_fold

    tallies_catch_up(seconds=float("inf"))
    head = tallies_fold().upto
    return [connection.ops.compose_sql(sql, [0, head]) for sql in fold_statements()]  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proposals", type=int, default=1_000_000)
    parser.add_argument("--recounts", type=int, default=5, help="full-history recounts to time (slow at 1M)")
    args = parser.parse_args()
    url, admin, name = scratch_database(os.environ.get("DATABASE_URL", ""), "_bench_metrics")
    recreate(admin, name)
    with tempfile.TemporaryDirectory() as var_dir:
        set_up_django(url, var_dir)
        from django.conf import settings
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        from approvals.noticing.tallies import tallies_catch_up

        settings.METRICS_TOKEN = TOKEN
        started = time.perf_counter()
        seed(args.proposals)
        events = seed_trail()
        seeded = time.perf_counter() - started
        client = Client()
        first, _ = scrape(client)
        behind = unfolded()
        started = time.perf_counter()
        tallies_catch_up(seconds=float("inf"))
        cold = time.perf_counter() - started
        _, size = scrape(client)
        timings = []
        for _ in range(REQUESTS):
            append_events()
            timings.append(scrape(client)[0])
        append_events()
        with CaptureQueriesContext(connection) as captured:
            scrape(client)
        # The transaction's own BEGIN and COMMIT are psycopg's to send below.
        statements = [query["sql"] for query in captured.captured_queries if query["sql"] not in ("BEGIN", "COMMIT")]
        # Rolled back: the scrape's folds would otherwise add the same events again at each run.
        raw = time_statements(url, statements, repeat=REQUESTS, rollback=True)
        recounts = time_statements(url, recount_statements(), repeat=args.recounts, rollback=True)
    print(f"/metrics, {args.proposals:,} proposals over {WORKFLOWS} workflows, {events:,} trail events")
    print(f"  (seeded in {seeded:.0f} s; {len(statements)} statements a scrape; {size:,} bytes of text)")
    print(f"  first scrape on the unfolded trail: {first:.0f} ms, leaving {behind:,} event ids to fold")
    print(f"  cold: beat's catch-up folded the rest in {cold:.1f} s")
    print(
        f"metrics p95 {percentile(timings, 0.95):.1f} ms (target <= 200 ms) | "
        f"raw SQL of the same aggregates p95 {percentile(raw, 0.95):.1f} ms"
    )
    print(f"  scrape {summary(timings)}   ({NEW_EVENTS} new events folded at each)")
    print(f"  raw    {summary(raw)}   (the scrape's statements through psycopg)")
    print(f"  recount of the three history aggregates over the whole trail: {summary(recounts)} ({args.recounts} runs)")
    print("  the statements:")
    for statement in statements:
        print(f"    {statement}")


if __name__ == "__main__":
    main()
