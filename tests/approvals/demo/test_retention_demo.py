from datetime import timedelta

from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from approvals.models import Proposal, RetentionRule
from audit.models import Artifact, AuditEvent, Tombstone
from audit.retention import artifacts_purge_expired


def test_the_demo_keeps_artifacts_by_their_rules_and_the_short_ones_are_purged(db, settings, tmp_path, client):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo")
    artifacts = list(Artifact.objects.all())
    assert {a.workflow_slug for a in artifacts} >= {"refund-notes", "duplicate-merge"}
    rules = {rule.pk: rule for rule in RetentionRule.objects.all()}
    for artifact in artifacts:
        assert artifact.expires_at - artifact.created_at == rules[artifact.rule_id].window
    assert AuditEvent.objects.filter(action="artifact.stored").count() == len(artifacts)
    refund = [a for a in artifacts if a.workflow_slug == "refund-notes"]
    assert refund and all(a.expires_at - a.created_at == timedelta(minutes=2) for a in refund)
    # Each refund note belongs to the refund proposal for its order, whose trace lists it.
    proposals = {p.pk: p for p in Proposal.objects.filter(workflow__slug="refund-notes", record_type="order")}
    assert {a.proposal_id for a in refund} == set(proposals)
    traced = refund[0]
    assert all(a.proposal_id is not None and proposals[a.proposal_id].record_id in a.name for a in refund)
    client.force_login(User.objects.get(username="lead"))
    trace = reverse("trace-proposal", args=[traced.proposal_id])
    assert traced.name in client.get(trace).content.decode()

    report = artifacts_purge_expired(now=timezone.now() + timedelta(minutes=3))

    assert report.purged == len(refund)
    assert not Artifact.objects.filter(workflow_slug="refund-notes").exists()
    assert Artifact.objects.filter(workflow_slug="duplicate-merge").count() == 6
    tombstones = Tombstone.objects.filter(workflow_slug="refund-notes")
    assert {t.artifact_id for t in tombstones} == {a.id for a in refund}
    page = " ".join(client.get(trace).content.decode().split())
    assert f"{traced.get_kind_display()} purged · {traced.name}" in page
    assert "under rule refund-notes" in page
    call_command("verify_audit")
