"""The demo's past month and the hours before the seed, lived through the services under a moved
clock: the quality page has weeks of decisions to chart, the trail says the times the proposals say,
and the queue opens on proposals already overdue."""

import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from approvals.demo.history import DAILY_RUN, NEW_VERSION, OLD_VERSION
from approvals.models import Proposal, ProposalStatus, Workflow
from approvals.noticing.quality import workflow_quality
from audit.models import AuditEvent
from audit.services import audit_verify_chain
from records.models import Change, Customer


@pytest.fixture
def demo(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo")


def test_the_quality_page_shows_weeks_of_two_prompt_versions_and_a_calm_one_before_the_breaker(demo, client):
    quality = workflow_quality(workflow=Workflow.objects.get(slug="address-updates"))
    versions = {v.prompt_version: v for v in quality.versions}
    old, new = versions[OLD_VERSION], versions[NEW_VERSION]
    assert len(old.decided_days) >= 8 and len(new.decided_days) >= 8
    assert max(d.day for d in old.decided_days) < min(d.day for d in new.decided_days if d.day < quality.last_day)
    # address-update@6 is rejected far more often; its conflicts and undos are there to see.
    history = Proposal.objects.filter(run_id__startswith=DAILY_RUN, prompt_version=NEW_VERSION)
    rejected = history.filter(status=ProposalStatus.REJECTED).count()
    assert rejected / history.exclude(status=ProposalStatus.PENDING).count() > 0.3
    assert old.total.reject_rate is not None and old.total.reject_rate < 15
    assert new.total.conflict and new.total.undone
    # The same reason written several ways is one group; decision times differ from day to day.
    [top, *_] = new.reasons
    assert top.count > 1 and "street number put at the end" in top.example.casefold()
    assert history.filter(decision_note__iexact="Street number put at the end").exists()
    assert history.filter(decision_note="street number put at the end.").exists()
    minutes = {d.tally.decision_minutes or 0.0 for d in old.decided_days + new.decided_days}
    assert len(minutes) >= 5 and max(minutes) > 3 * min(m for m in minutes if m)

    merges = {
        v.prompt_version: v for v in workflow_quality(workflow=Workflow.objects.get(slug="duplicate-merge")).versions
    }
    assert len(merges["dedupe@2"].decided_days) >= 5
    assert merges["dedupe@2"].total.reject_rate < 30 < merges["dedupe@3"].total.reject_rate  # type: ignore[operator]

    client.login(username="lead", password="lead")
    page = client.get(reverse("workflow-quality", args=["address-updates"])).content.decode()
    for version in (OLD_VERSION, NEW_VERSION):
        assert f"Decisions per day, prompt version {version}" in page
    assert top.example in page


def test_the_trail_says_the_times_the_proposals_say_and_runs_with_time(demo):
    rejected = Proposal.objects.filter(run_id__startswith=DAILY_RUN, status=ProposalStatus.REJECTED).first()
    assert rejected is not None and rejected.decided_at is not None
    assert rejected.decided_at < timezone.now() - timedelta(days=1)
    events = {e.action: e for e in AuditEvent.objects.filter(proposal_id=rejected.pk)}
    assert events["proposal.submitted"].occurred_at == rejected.created_at
    assert events["proposal.rejected"].occurred_at == events["proposal.rejected"].decided_at == rejected.decided_at

    undone = Proposal.objects.filter(run_id__startswith=DAILY_RUN, status=ProposalStatus.REVERTED).first()
    assert undone is not None and undone.decided_at is not None
    applied = Change.objects.get(proposal_id=undone.pk, action="update")
    assert undone.decided_at < applied.applied_at < undone.decided_at + timedelta(minutes=1)
    assert AuditEvent.objects.filter(change_id=applied.id, occurred_at=applied.applied_at).exists()
    # The undo put the address back: the record says what the proposal found.
    customer = Customer.objects.get(record_id=undone.record_id)
    assert customer.shipping_address == undone.base["shipping_address"]
    kept = Proposal.objects.filter(run_id__startswith=DAILY_RUN, status=ProposalStatus.APPLIED, action="update").first()
    assert kept is not None
    assert Customer.objects.get(record_id=kept.record_id).shipping_address == kept.changes["shipping_address"]

    times = list(AuditEvent.objects.order_by("id").values_list("occurred_at", flat=True))
    assert times[0] < timezone.now() - timedelta(days=27)
    assert all(earlier <= later for earlier, later in zip(times, times[1:], strict=False))
    checked, broken = audit_verify_chain()
    assert broken is None and checked == len(times)


def test_the_queue_opens_on_proposals_waiting_past_their_time_to_decide(demo, client):
    client.login(username="lead", password="lead")
    page = client.get(reverse("review-queue"), {"workflow": "address-updates"}).content.decode()
    overdue = re.findall(r"overdue by ([^:<]+): to be decided within 2h", page)
    assert len(overdue) >= 3
    assert 'class="age-badge is-overdue"' in page
    refunds = client.get(reverse("review-queue"), {"workflow": "refund-notes"}).content.decode()
    assert "to be decided within 15m" in refunds and "overdue by" in refunds
    waiting = Proposal.objects.filter(run_id__startswith=DAILY_RUN, status=ProposalStatus.PENDING)
    assert waiting.count() == 4
    assert all(p.created_at > timezone.now() - timedelta(hours=6) for p in waiting)
