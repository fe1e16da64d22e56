"""Benchmark of the review screens on PostgreSQL: the queue page and the one-proposal page at 1,000 and
at 100,000 pending proposals across 5 workflows, and the time from the `a` key to the next proposal
in a real browser against gunicorn.

Each page figure is printed beside its raw baseline: the very SQL the page ran, executed straight
through psycopg on the same database in the same run, and the ratio of the two.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cs_h4 .venv/bin/python bench/review.py [--port 18410]

The benchmark works in its own database, named after DATABASE_URL's with `_bench` appended; it drops
and recreates that database on every run and leaves it behind for inspection.
Targets: p95 <= 150 ms for both pages, the same query count at both sizes, `a` to next p95 <= 300 ms.
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORKFLOWS = 5
CUSTOMERS = 5_000
SIZES = (1_000, 100_000)
REQUESTS = 60
KEY_PRESSES = 40
REVIEWER = "bench-lead"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    return f"p50 {statistics.median(values):7.1f} ms   p95 {percentile(values, 0.95):7.1f} ms"


def bench_database_url() -> tuple[str, str, str]:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("bench/review.py runs on PostgreSQL: set DATABASE_URL=postgres://...")
    parsed = urlparse(url)
    name = parsed.path.lstrip("/") + "_bench"
    admin = urlunparse(parsed._replace(path="/postgres"))
    return urlunparse(parsed._replace(path="/" + name)), admin, name


def recreate_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def set_up_django(url: str, var_dir: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["COUNTERSIGN_VAR_DIR"] = var_dir
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def create_people_and_workflows():  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group, User
    from guardian.shortcuts import assign_perm

    from approvals.models import FieldPolicy, Workflow
    from records.store import get_store

    leads = Group.objects.create(name="bench-leads")
    reviewer = User.objects.create_user(REVIEWER, password=REVIEWER, first_name="Dana", last_name="Lee")
    reviewer.groups.add(leads)
    owner = User.objects.create_user("bench-owner")
    workflows = []
    for n in range(WORKFLOWS):
        workflow = Workflow.objects.create(
            slug=f"bench-{n}", name=f"Bench workflow {n}", owner=owner, lane="write", stage="live",
            approver_group=leads, actions=["update"],
        )  # fmt: skip
        assign_perm("approvals.review_workflow", leads, workflow)
        FieldPolicy.objects.bulk_create(
            FieldPolicy(workflow=workflow, record_type="customer", field=name, access="suggest")
            for name in ("shipping_address", "phone", "support_notes")
        )
        workflows.append(workflow)
    hidden = Workflow.objects.create(slug="bench-hidden", name="Not for the leads", owner=owner, lane="write")
    get_store("customer").create_many(
        "customer",
        [
            (
                f"CUS-{100000 + n}",
                {
                    "full_name": f"Customer {n}",
                    "email": f"customer{n}@example.com",
                    "phone": f"+44 7700 9{n:05d}",
                    "shipping_address": f"{n % 90 + 1} Old Mill Lane, Leith",
                    "support_notes": "Prefers email.",
                },
            )
            for n in range(CUSTOMERS)
        ],
    )
    return reviewer, workflows, hidden


def insert_proposals(workflows, hidden, count: int, start: int) -> None:  # type: ignore[no-untyped-def]
    """COPY `count` pending proposals straight into the table; a fifth of them in batches of 500."""
    from django.db import connection

    from approvals.models import Batch

    rng = random.Random(start)
    base_time = datetime(2026, 11, 1, tzinfo=UTC)
    batches = Batch.objects.bulk_create(
        [
            Batch(workflow=workflows[n % WORKFLOWS], name=f"bulk {start + n}", run_id=f"run-bulk-{start + n}")
            for n in range(max(1, count // 2500))
        ]
    )
    columns = (
        "workflow_id, batch_id, record_type, record_id, action, changes, base, merge_into, reason, confidence, "
        "model_name, model_version, prompt_version, run_id, requested_by, follow_ups, status, revision, "
        "created_at, updated_at, decision_note, apply_attempts, last_error, flagged_fields"
    )
    field_choices = (["shipping_address"], ["phone"], ["shipping_address", "phone"], ["support_notes"])
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY approvals_proposal ({columns}) FROM STDIN") as copy:
            for n in range(start, start + count):
                customer = rng.randrange(CUSTOMERS)
                fields = field_choices[n % len(field_choices)]
                changes = {name: f"new {name} {n}" for name in fields}
                base = {
                    "shipping_address": f"{customer % 90 + 1} Old Mill Lane, Leith",
                    "phone": f"+44 7700 9{customer:05d}",
                    "support_notes": "Prefers email.",
                }
                workflow = hidden if n % 50 == 49 else workflows[n % WORKFLOWS]
                batch = batches[n % len(batches)] if n % 5 == 0 and workflow is not hidden else None
                created = base_time + timedelta(seconds=n * 7)
                copy.write_row(
                    (
                        workflow.pk, batch.pk if batch and batch.workflow_id == workflow.pk else None, "customer",
                        f"CUS-{100000 + customer}", "update", json.dumps(changes),
                        json.dumps({name: base[name] for name in fields}), "",
                        "Customer asked for this in their latest ticket", 0.9, "gpt-x", "2026-10-01",
                        f"prompt@{n % 3}", f"run-{n // 1000}", "agent", "[]", "pending", 1, created, created,
                        "", 0, "", "[]",
                    )
                )  # fmt: skip
        # What autovacuum does after a bulk load: statistics, and the visibility map index-only scans need.
        cursor.execute("VACUUM ANALYZE approvals_proposal")


def time_pages(client, paths: list[str]) -> tuple[list[float], int, list[str]]:  # type: ignore[no-untyped-def]
    """Time GETs of `paths` (cycled) through the whole Django stack; the queries of the first one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for path in paths[:5]:
        client.get(path)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(paths[0])
    assert response.status_code == 200, (paths[0], response.status_code)
    statements = [query["sql"] for query in captured.captured_queries]
    timings = []
    for n in range(REQUESTS):
        started = time.perf_counter()
        response = client.get(paths[n % len(paths)])
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return timings, len(statements), statements


def time_raw(dsn: str, statements: list[str]) -> list[float]:
    """The same statements, straight through psycopg: the floor the page stands on."""
    import psycopg

    def run(connection: psycopg.Connection) -> None:
        for statement in statements:
            cursor = connection.execute(statement)
            if cursor.description is not None:  # BEGIN, SET LOCAL and COMMIT return no rows
                cursor.fetchall()

    timings = []
    with psycopg.connect(dsn, autocommit=True) as connection:
        for _ in range(5):
            run(connection)
        for _ in range(REQUESTS):
            started = time.perf_counter()
            run(connection)
            timings.append((time.perf_counter() - started) * 1000)
    return timings


def measure_pages(dsn: str, size: int, reviewer) -> dict[str, tuple[list[float], int, list[float]]]:  # type: ignore[no-untyped-def]
    from django.test import Client

    from approvals.models import Proposal

    client = Client()
    client.force_login(reviewer)
    pending = list(
        Proposal.objects.filter(status="pending", workflow__slug__startswith="bench-")
        .exclude(workflow__slug="bench-hidden")
        .values_list("id", flat=True)
    )
    rng = random.Random(size)
    detail_paths = [f"/review/{pk}/" for pk in rng.sample(pending, 30)]
    pages = {
        "queue page": ["/review/"],
        "queue, filtered": ["/review/?workflow=bench-2&field=phone&age=1d"],
        "queue, page 40": ["/review/?page=40"],
        "detail page": detail_paths,
    }
    results = {}
    for label, paths in pages.items():
        timings, queries, statements = time_pages(client, paths)
        results[label] = (timings, queries, time_raw(dsn, statements))
    return results


def wait_for_server(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/login/", timeout=2) as response:  # noqa: S310 - our own local server
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"the server at {url} did not start")


def measure_keyboard(url: str, dsn: str, port: int) -> list[float]:
    """Time from pressing `a` to the next proposal swapped in and painted, in Chromium against gunicorn."""
    from playwright.sync_api import sync_playwright

    var_dir = tempfile.mkdtemp(prefix="cs-bench-")
    environment = {
        **os.environ,
        "DATABASE_URL": dsn,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "COUNTERSIGN_VAR_DIR": var_dir,
    }
    environment.pop("REDIS_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--threads", "4", "--log-level", "warning"],
        cwd=ROOT, env=environment,
    )  # fmt: skip
    timings: list[float] = []
    try:
        wait_for_server(url)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"], headless=True
            )
            page = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=url).new_page()
            page.goto("/login/")
            page.get_by_label("Username").fill(REVIEWER)
            page.get_by_label("Password").fill(REVIEWER)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_load_state()
            page.goto("/review/")
            page.locator("a.open").first.click()
            page.wait_for_load_state("networkidle")
            page.evaluate("window.stillTheSamePage = true")
            for _ in range(KEY_PRESSES + 3):
                # A press on a proposal shown for less than the settle time is refused: look first.
                page.locator("[data-proposal][data-settled]").wait_for()
                before = page.locator("[data-proposal]").get_attribute("data-proposal")
                page.evaluate(
                    """(before) => {
                        window.nextShown = new Promise((resolve) => {
                            const started = performance.now();
                            const panel = document.getElementById("proposal-panel");
                            const seen = new MutationObserver(() => {
                                const shown = panel.querySelector("[data-proposal]");
                                if (shown && shown.dataset.proposal !== before) {
                                    seen.disconnect();
                                    requestAnimationFrame(() => resolve(performance.now() - started));
                                }
                            });
                            seen.observe(panel, {childList: true, subtree: true});
                            window.keyPressedAt = started;
                        });
                    }""",
                    before,
                )
                page.keyboard.press("a")
                timings.append(page.evaluate("window.nextShown"))
                page.wait_for_load_state("networkidle")
            assert page.evaluate("window.stillTheSamePage") is True, "a key press loaded a whole page"
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
        shutil.rmtree(var_dir, ignore_errors=True)
    return timings[3:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=18410, help="port for gunicorn on 127.0.0.1 (default 18410)")
    parser.add_argument("--no-browser", action="store_true", help="skip the keyboard timing in Chromium")
    options = parser.parse_args()

    url, admin_url, name = bench_database_url()
    dsn = url.replace("postgres://", "postgresql://", 1)
    print(
        f"Database {name} (dropped and created afresh); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    recreate_database(admin_url, name)
    var_dir = tempfile.mkdtemp(prefix="cs-bench-")
    set_up_django(url, var_dir)
    reviewer, workflows, hidden = create_people_and_workflows()

    results = {}
    inserted = 0
    for size in SIZES:
        started = time.perf_counter()
        insert_proposals(workflows, hidden, size - inserted, inserted)
        inserted = size
        print(f"\n{size:,} pending proposals across {WORKFLOWS} workflows (+2% in a workflow the reviewer may not see);"
              f" inserted by COPY in {time.perf_counter() - started:.1f} s")  # fmt: skip
        results[size] = measure_pages(dsn, size, reviewer)
        print(f"{'page':18} {'through Django':34} {'raw SQL (same statements)':34} {'ratio':>6} {'queries':>8}")
        for label, (timings, queries, raw) in results[size].items():
            ratio = percentile(timings, 0.95) / percentile(raw, 0.95)
            print(f"{label:18} {summary(timings):34} {summary(raw):34} {ratio:5.1f}x {queries:8d}")

    print("\nQuery counts, 1,000 vs 100,000:")
    for label in results[SIZES[0]]:
        small, large = results[SIZES[0]][label][1], results[SIZES[-1]][label][1]
        print(f"  {label:18} {small} vs {large}  {'same' if small == large else 'DIFFERENT'}")
    worst = max(percentile(timings, 0.95) for timings, _, _ in results[SIZES[-1]].values())
    print(f"Worst page p95 at {SIZES[-1]:,}: {worst:.1f} ms (target <= 150 ms)")

    if not options.no_browser:
        keyboard = measure_keyboard(f"http://127.0.0.1:{options.port}", url, options.port)
        print(f"\n`a` to the next proposal painted, Chromium + gunicorn (2 workers), {SIZES[-1]:,} pending, "
              f"{len(keyboard)} presses: {summary(keyboard)}   (target p95 <= 300 ms)")  # fmt: skip
        print(f"  beside the same decision in-process (HX POST approve, next proposal rendered, no browser): "
              f"{summary(decide_in_process(reviewer))}")  # fmt: skip
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    shutil.rmtree(var_dir, ignore_errors=True)


def decide_in_process(reviewer) -> list[float]:  # type: ignore[no-untyped-def]
    from django.test import Client
    from django.utils import timezone

    from approvals.models import Proposal
    from approvals.review.sight import SETTLE, proposal_shown, sight_token

    client = Client()
    client.force_login(reviewer)
    oldest = Proposal.objects.filter(status="pending", workflow__slug__in=[f"bench-{n}" for n in range(WORKFLOWS)])
    timings = []
    for proposal in oldest.order_by("created_at", "id").only("id", "revision")[:23]:
        # What the reviewer's page would carry, had they looked at it for the settle time.
        shown = sight_token(shown=proposal_shown(proposal), user=reviewer, at=timezone.now() - 2 * SETTLE)
        started = time.perf_counter()
        seen = {"revision": str(proposal.revision), "shown": shown}
        response = client.post(f"/review/{proposal.pk}/approve/", seen, HTTP_HX_REQUEST="true")
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200 and "proposalDecided" in response["HX-Trigger"]
    return timings[3:]


if __name__ == "__main__":
    main()
