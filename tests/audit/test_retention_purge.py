from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import DatabaseError, transaction
from django.utils import timezone

from audit.models import Artifact, AuditEvent, Tombstone
from audit.retention import artifacts_purge_expired
from audit.services import audit_verify_chain
from audit.tasks import purge_expired_artifacts
from tests.helpers.factories import ArtifactFactory, RetentionRuleFactory, WorkflowFactory


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
    tombstones = {t.artifact_id: t for t in Tombstone.objects.all()}
    assert set(tombstones) == {a.id for a in expired}
    first = expired[0]
    tombstone = tombstones[first.id]
    assert (tombstone.workflow_slug, tombstone.kind, tombstone.bucket) == ("refund-notes", "prompt", "live")
    assert (tombstone.sha256, tombstone.size) == (first.sha256, first.size)
    assert tombstone.proposal_id == first.proposal_id
    assert tombstone.rule_id == rule.pk
    assert tombstone.rule == "refund-notes prompt/live"
    assert tombstone.expires_at == first.expires_at
    assert tombstone.purged_at >= first.expires_at
    [event] = AuditEvent.objects.filter(action="artifacts.purged")
    assert event.actor_label == "retention purge"
    assert event.workflow_slug == "refund-notes"
    assert event.details["count"] == 3
    assert event.details["batch"] == str(tombstone.batch)
    assert event.details["rules"] == {"refund-notes prompt/live": 3}
    checked, broken = audit_verify_chain()
    assert broken is None
    assert checked == AuditEvent.objects.count()
    call_command("verify_audit")


def test_an_altered_tombstone_breaks_the_chain(rule, audit_guard_bypassed):
    _expired(rule)
    _expired(rule)
    artifacts_purge_expired()
    event = AuditEvent.objects.get(action="artifacts.purged")
    Tombstone.objects.filter(pk=Tombstone.objects.order_by("pk")[0].pk).update(sha256="0" * 64)
    checked, broken = audit_verify_chain()
    assert broken is not None
    assert broken.event_id == event.pk
    assert "do not match the digest" in broken.problem


def test_a_removed_tombstone_breaks_the_chain(rule, audit_guard_bypassed):
    _expired(rule)
    _expired(rule)
    artifacts_purge_expired()
    Tombstone.objects.filter(pk=Tombstone.objects.order_by("pk")[0].pk).delete()
    checked, broken = audit_verify_chain()
    assert broken is not None
    assert broken.problem == "it vouches for 2 tombstones and 1 are there"


def test_tombstones_are_append_only(rule):
    _expired(rule)
    artifacts_purge_expired()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Tombstone.objects.update(size=0)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Tombstone.objects.all().delete()


def test_purging_twice_purges_nothing_more(rule):
    _expired(rule)
    assert artifacts_purge_expired().purged == 1
    again = artifacts_purge_expired()
    assert again.purged == 0
    assert again.batches == 0
    assert Tombstone.objects.count() == 1
    assert AuditEvent.objects.filter(action="artifacts.purged").count() == 1


def test_purge_works_in_bounded_batches(rule):
    for _ in range(7):
        _expired(rule)
    report = artifacts_purge_expired(batch_size=3)
    assert report.purged == 7
    assert report.batches == 3
    assert not Artifact.objects.exists()
    assert Tombstone.objects.count() == 7
    purges = AuditEvent.objects.filter(action="artifacts.purged").order_by("id")
    assert list(purges.values_list("details__count", flat=True)) == [
        3,
        3,
        1,
    ]
    assert audit_verify_chain()[1] is None


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
    assert Tombstone.objects.get().had_file is True


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
