"""Benchmark of the quality page on PostgreSQL at 1,000,000 proposals: the page of one workflow through
the whole Django stack, printed beside its raw baseline (the very SQL it ran, executed straight through
psycopg on the same database in the same run).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cs .venv/bin/python bench/quality.py [--proposals 1000000]

The proposals are spread over 5 workflows and the last 90 days, each workflow with 5 prompt versions:
most applied, some rejected (with 40 reasons written several ways), in conflict, undone or pending.
It works in its own database, named after DATABASE_URL's with `_bench_quality` appended, dropped and
recreated on every run. Target: p95 <= 200 ms, and the same query count whatever the size.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.review import summary, time_pages, time_raw  # noqa: E402
from bench.seeding import recreate, scratch_database  # noqa: E402

WORKFLOWS = 5
REVIEWER = "bench-lead"

# One row per proposal, from generate_series: its workflow, day, version and fate follow from its number.
INSERT = """
INSERT INTO approvals_proposal (
    workflow_id, record_type, record_id, action, changes, base, merge_into, reason, confidence, model_name,
    model_version, prompt_version, run_id, requested_by, follow_ups, status, revision, created_at, updated_at,
    approved_at, decided_at, decided_by_id, decision_note, apply_attempts, last_error, flagged_fields
)
SELECT
    (%(workflows)s)[1 + g %% %(count)s], 'customer', 'CUS-' || (100000 + g %% 5000), 'update',
    '{"shipping_address": "12 Harbour Road"}', '{"shipping_address": "4 Old Mill Lane"}', '',
    'Customer asked in a ticket', 0.9, 'gpt-x', '2026-10-01', 'address-update@' || (g / 7 %% 5),
    'run-' || (g / 1000), 'agent', '[]', fate.status, 1, at.created, at.created,
    CASE WHEN fate.status IN ('pending', 'rejected') THEN NULL ELSE at.created + interval '7 minutes' END,
    CASE WHEN fate.status = 'pending' THEN NULL ELSE at.created + (g %% 50) * interval '1 minute' END,
    CASE WHEN fate.status = 'pending' OR g %% 11 = 0 THEN NULL ELSE %(reviewer)s END,
    CASE WHEN fate.status = 'rejected'
         THEN (ARRAY['Wrong address.', 'wrong   address', 'WRONG ADDRESS!'])[1 + g %% 3] || ' (' || (g %% 40) || ')'
         ELSE '' END,
    0, '', '[]'
FROM generate_series(1, %(total)s) AS g
CROSS JOIN LATERAL (SELECT now() - (g %% 90) * interval '1 day' - (g %% 86400) * interval '1 second' AS created) AS at
CROSS JOIN LATERAL (
    SELECT CASE
        WHEN g %% 100 < 10 THEN 'rejected' WHEN g %% 100 < 14 THEN 'conflict' WHEN g %% 100 < 17 THEN 'reverted'
        WHEN g %% 100 < 20 THEN 'pending' ELSE 'applied' END AS status
) AS fate
"""


def set_up_django(url: str, var_dir: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["COUNTERSIGN_VAR_DIR"] = var_dir
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(total: int):  # type: ignore[no-untyped-def]
    """The workflows, their lead, and `total` proposals; the first workflow is the one the page shows."""
    from django.contrib.auth.models import Group, User
    from django.db import connection
    from guardian.shortcuts import assign_perm

    from approvals.models import Workflow

    leads = Group.objects.create(name="bench-leads")
    reviewer = User.objects.create_user(REVIEWER, password=REVIEWER)
    reviewer.groups.add(leads)
    owner = User.objects.create_user("bench-owner")
    workflows = []
    for n in range(WORKFLOWS):
        workflow = Workflow.objects.create(
            slug=f"bench-{n}", name=f"Bench workflow {n}", owner=owner, lane="write", stage="live",
            approver_group=leads, actions=["update"],
        )  # fmt: skip
        assign_perm("approvals.view_workflow", leads, workflow)
        workflows.append(workflow)
    ids = [w.pk for w in workflows]
    with connection.cursor() as cursor:
        cursor.execute(INSERT, {"workflows": ids, "count": len(ids), "total": total, "reviewer": reviewer.pk})
        cursor.execute("VACUUM ANALYZE approvals_proposal")
    return reviewer, workflows[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proposals", type=int, default=1_000_000)
    args = parser.parse_args()
    url, admin, name = scratch_database(os.environ.get("DATABASE_URL", ""), "_bench_quality")
    recreate(admin, name)
    with tempfile.TemporaryDirectory() as var_dir:
        set_up_django(url, var_dir)
        reviewer, workflow = seed(args.proposals)
        from django.test import Client
        from django.urls import reverse

        client = Client()
        client.force_login(reviewer)
        path = reverse("workflow-quality", args=[workflow.slug])
        timings, queries, statements = time_pages(client, [path])
        raw = time_raw(url, statements)
    print(f"quality page, {args.proposals:,} proposals over {WORKFLOWS} workflows, {queries} queries")
    print(f"  page {summary(timings)}")
    print(f"  raw  {summary(raw)}   (the page's SQL through psycopg)")
    aggregates = [s for s in statements if "approvals_proposal" in s or "approvals_shadowverdict" in s]
    print("  the aggregates:")
    for statement in aggregates:
        print(f"    {statement}")


if __name__ == "__main__":
    main()
