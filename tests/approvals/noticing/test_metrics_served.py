"""`/metrics` served by a real gunicorn after a real Celery worker applied, conflicted and failed
proposals: every gunicorn process answers the same figures, read from the database."""

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from approvals.jobs import apply_send_now
from approvals.models import FieldPolicy, Proposal, ProposalStatus
from approvals.review.services import proposal_approve
from approvals.undo.services import undo_change
from approvals.workflows.loading import workflow_group_permissions_sync
from audit.services import Actor
from records.models import Change, Customer
from tests.approvals.noticing.scraping import TOKEN, Scrape
from tests.helpers.factories import ProposalFactory, UserFactory
from tests.helpers.pipeline import make_pipeline, make_workflow
from tests.helpers.releases import submit
from tests.helpers.sight import looked_at
from tests.helpers.worker import ROOT, database_url, wait_until

pytestmark = pytest.mark.worker

V7 = {"workflow": "address-updates", "prompt_version": "address-update@7"}
REFUNDS = {"workflow": "refund-notes", "prompt_version": "refund@1"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


@pytest.fixture
def gunicorn(transactional_db, tmp_path: Path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A gunicorn of two processes serving the app against the test database; yields its base URL."""
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(connection.settings_dict),
        "METRICS_TOKEN": TOKEN,
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "config.wsgi:application",
        f"--bind=127.0.0.1:{port}",
        "--workers=2",
        "--timeout=60",
    ]
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _get(f"{base}/api/v1/health")[0] == 200 or process.poll() is not None, timeout=60)
        assert process.poll() is None, log.read_text()
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_a_real_gunicorn_reports_what_a_real_worker_applied(start_worker, gunicorn):
    start_worker(concurrency=2)
    addresses = make_workflow(slug="address-updates")
    lead = UserFactory(username="lead")
    assert addresses.approver_group is not None
    lead.groups.add(addresses.approver_group)
    workflow_group_permissions_sync(workflow=addresses)
    first, second, stale = submit(make_pipeline(addresses), 3, version="address-update@7")
    # Someone changed the third customer's address since the AI read it: that one conflicts.
    Customer.objects.filter(record_id=stale.record_id).update(shipping_address="1 Elsewhere Street")
    for proposal in (first, second, stale):
        proposal.refresh_from_db()
        proposal_approve(proposal=proposal, reviewer=lead, shown_token=looked_at(proposal, lead)["shown"])

    # Another workflow's file stopped allowing the change after it was approved: it fails.
    refunds = make_workflow(slug="refund-notes")
    refused = ProposalFactory(workflow=refunds, prompt_version="refund@1", status=ProposalStatus.APPROVED)
    Proposal.objects.filter(pk=refused.pk).update(approved_at=refused.created_at)
    FieldPolicy.objects.filter(workflow=refunds, field="shipping_address").update(access="read")
    apply_send_now([refused.pk])

    def settled() -> bool:
        statuses = dict(Proposal.objects.values_list("pk", "status"))
        return [statuses[p.pk] for p in (first, second, stale, refused)] == [
            ProposalStatus.APPLIED,
            ProposalStatus.APPLIED,
            ProposalStatus.CONFLICT,
            ProposalStatus.FAILED,
        ]

    wait_until(settled, timeout=60, what="the worker to apply, conflict and fail")
    undo_change(change=Change.objects.get(proposal_id=first.pk), actor=Actor.system("metrics test"))

    scrapes = []
    for _ in range(6):  # two gunicorn processes: each answers some of these
        status, body = _get(f"{gunicorn}/metrics", TOKEN)
        assert status == 200, body
        scrapes.append(Scrape.of(body))
    assert _get(f"{gunicorn}/metrics")[0] == 401

    now = scrapes[-1]
    expected = {
        ("countersign_proposals_total", "submitted"): 3,
        ("countersign_proposals_total", "approved_by_person"): 3,
        ("countersign_proposals_total", "applied"): 2,
        ("countersign_proposals_total", "conflict"): 1,
        ("countersign_proposals_total", "undone"): 1,
        ("countersign_proposals_total", "failed"): 0,
    }
    for (name, outcome), value in expected.items():
        assert now.value(name, outcome=outcome, **V7) == value, outcome
    assert now.value("countersign_proposals_total", outcome="failed", **REFUNDS) == 1
    assert now.value("countersign_proposals_total", outcome="applied", **REFUNDS) == 0
    assert now.value("countersign_apply_lag_seconds_count", **V7) == 2
    assert now.value("countersign_apply_lag_seconds_bucket", le="60.0", **V7) == 2
    assert now.value("countersign_apply_lag_seconds_count", **REFUNDS) is None
    assert now.value("countersign_decision_time_seconds_count", **V7) == 3
    assert now.value("countersign_proposals_approved_waiting", **V7) == 0

    def figures(scrape: Scrape) -> dict:
        return {key: value for key, value in scrape.samples.items() if "age_seconds" not in key[0]}

    assert all(figures(other) == figures(now) for other in scrapes)
