from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone

from approvals.models import RetentionRule
from audit.models import Artifact, AuditEvent, Tombstone
from audit.retention import artifacts_purge_expired


def test_the_demo_keeps_artifacts_by_their_rules_and_the_short_ones_are_purged(db, settings, tmp_path):
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

    report = artifacts_purge_expired(now=timezone.now() + timedelta(minutes=3))

    assert report.purged == len(refund)
    assert not Artifact.objects.filter(workflow_slug="refund-notes").exists()
    assert Artifact.objects.filter(workflow_slug="duplicate-merge").count() == 6
    tombstones = Tombstone.objects.filter(workflow_slug="refund-notes")
    assert {t.artifact_id for t in tombstones} == {a.id for a in refund}
    call_command("verify_audit")
