from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.utils import timezone

from audit.models import Artifact, AuditEvent
from audit.retention import artifacts_purge_expired
from audit.services import audit_verify_chain
from audit.tasks import purge_expired_artifacts
from tests.factories import ArtifactFactory, RetentionRuleFactory, WorkflowFactory


def _expired(rule, *, ago=timedelta(minutes=5), **kwargs):
    created = timezone.now() - rule.window - ago
    return ArtifactFactory.create(rule=rule, created_at=created, **kwargs)


@pytest.fixture
def rule(db):
    workflow = WorkflowFactory(slug="refund-notes")
    return RetentionRuleFactory(workflow=workflow, kind="prompt", bucket="live", window=timedelta(minutes=2))


def test_purge_leaves_one_tombstone_per_artifact_and_the_chain_still_verifies(rule):
    expired = [_expired(rule) for _ in range(3)]
    kept = ArtifactFactory.create(rule=rule)

    report = artifacts_purge_expired()

    assert report.purged == 3
    assert list(Artifact.objects.values_list("id", flat=True)) == [kept.id]
    tombstones = {e.details["artifact_id"]: e for e in AuditEvent.objects.filter(action="artifact.purged")}
    assert set(tombstones) == {str(a.id) for a in expired}
    first = expired[0]
    tombstone = tombstones[str(first.id)]
    assert tombstone.workflow_slug == "refund-notes"
    assert tombstone.actor_label == "retention purge"
    assert tombstone.details["kind"] == "prompt"
    assert tombstone.details["bucket"] == "live"
    assert tombstone.details["sha256"] == first.sha256
    assert tombstone.details["size"] == first.size
    assert tombstone.details["rule_id"] == rule.pk
    assert tombstone.details["rule"] == "refund-notes prompt/live"
    assert tombstone.occurred_at >= first.expires_at
    checked, broken = audit_verify_chain()
    assert broken is None
    assert checked == AuditEvent.objects.count()
    call_command("verify_audit")


def test_purging_twice_purges_nothing_more(rule):
    _expired(rule)
    assert artifacts_purge_expired().purged == 1
    again = artifacts_purge_expired()
    assert again.purged == 0
    assert again.batches == 0
    assert AuditEvent.objects.filter(action="artifact.purged").count() == 1


def test_purge_works_in_bounded_batches(rule):
    for _ in range(7):
        _expired(rule)
    report = artifacts_purge_expired(batch_size=3)
    assert report.purged == 7
    assert report.batches == 3
    assert not Artifact.objects.exists()
    assert AuditEvent.objects.filter(action="artifact.purged").count() == 7


def test_purge_only_takes_what_expired_by_the_given_time(rule):
    soon = ArtifactFactory.create(rule=rule)
    assert artifacts_purge_expired().purged == 0
    assert artifacts_purge_expired(now=soon.expires_at + timedelta(seconds=1)).purged == 1


def test_purge_deletes_stored_files_once_committed(rule, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path
    artifact = _expired(rule, content="")
    artifact.file.save("scan.pdf", ContentFile(b"%PDF-1.7 scanned return label"), save=True)
    path = tmp_path / artifact.file.name
    assert path.exists()

    with django_capture_on_commit_callbacks(execute=True):
        report = artifacts_purge_expired()

    assert report.files == 1
    assert not path.exists()
    tombstone = AuditEvent.objects.get(action="artifact.purged")
    assert tombstone.details["file"] is True


def test_purge_refuses_an_empty_batch_size(db):
    with pytest.raises(ValueError, match="batch_size"):
        artifacts_purge_expired(batch_size=0)


def test_the_command_purges_now_and_says_how_much(rule, capsys):
    _expired(rule)
    _expired(rule)
    call_command("purge_artifacts")
    assert "Purged 2 expired artifact(s)" in capsys.readouterr().out
    call_command("purge_artifacts")
    assert "nothing was purged" in capsys.readouterr().out


def test_the_beat_task_runs_the_purge(rule):
    _expired(rule)
    result = purge_expired_artifacts()
    assert result["purged"] == 1
    assert not Artifact.objects.exists()


def test_beat_schedules_the_purge(settings, db):
    from config.celery import app

    app.loader.import_default_modules()
    entries = [
        entry for entry in settings.CELERY_BEAT_SCHEDULE.values() if entry["task"] == "audit.purge_expired_artifacts"
    ]
    assert len(entries) == 1
    assert entries[0]["schedule"] == settings.ARTIFACT_PURGE_EVERY_SECONDS
    assert "audit.purge_expired_artifacts" in app.tasks
