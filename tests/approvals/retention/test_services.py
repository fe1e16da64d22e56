import hashlib
from datetime import timedelta

import pytest
import yaml
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from approvals.models import (
    RetentionChange,
    RetentionChangeStatus,
    RetentionRule,
    TrainingCopyRequest,
    TrainingCopyStatus,
)
from approvals.retention.services import (
    artifact_copy_to_training,
    retention_change_countersign,
    retention_change_propose,
    retention_change_withdraw,
    training_copy_decide,
    training_copy_request,
)
from audit.models import Artifact, AuditEvent
from audit.reading import Decider, decider
from core.errors import InvalidTransition, NotAllowed, NotFound, ValidationFailed
from tests.helpers.factories import ArtifactFactory, RetentionRuleFactory, UserFactory, WorkflowFactory


@pytest.fixture
def owner(db):
    return UserFactory(username="owner", first_name="Morgan", last_name="Hale")


@pytest.fixture
def security(db):
    return UserFactory(username="security", first_name="Sasha", last_name="Iyer")


@pytest.fixture
def workflow(owner, security):
    return WorkflowFactory(slug="duplicate-merge", owner=owner, retention_co_owner=security)


@pytest.fixture
def prompt_rule(workflow):
    return RetentionRuleFactory(workflow=workflow, kind="prompt", bucket="live", window=timedelta(days=7))


def _workflow_file(tmp_path, **changes):
    workflow = {
        "slug": "refund-notes",
        "name": "Refund notes",
        "owner": "owner",
        "lane": "write",
        "approvers": "support-leads",
        "actions": ["update"],
        "fields": {"order": {"refund_status": "suggest"}},
        "retention": {"prompt": {"live": "7d"}, "output": {"live": "30d"}},
        "retention_co_owner": "security",
        **changes,
    }
    path = tmp_path / "workflows.yaml"
    path.write_text(yaml.safe_dump({"workflows": [workflow]}))
    return path


def _window(rule):
    return RetentionRule.objects.get(pk=rule.pk).window


# Rules and expiry


def test_the_expiry_of_a_loaded_rule_is_its_window_from_storage(owner, security, tmp_path):
    call_command("load_workflows", str(_workflow_file(tmp_path)))
    rule = RetentionRule.objects.get(workflow__slug="refund-notes", kind="output", bucket="live")
    assert rule.window == timedelta(days=30)
    assert rule.owner == owner
    artifact = ArtifactFactory.create(rule=rule)
    assert artifact.expires_at - artifact.created_at == timedelta(days=30)


def test_a_rule_with_no_owner_is_refused_by_the_file(owner, security, tmp_path):
    with pytest.raises(CommandError, match="retention_owner: every retention rule needs a named owner"):
        call_command("load_workflows", str(_workflow_file(tmp_path, retention_owner=None)))
    assert not RetentionRule.objects.exists()


def test_a_rule_with_no_owner_is_refused_by_the_database(workflow):
    with pytest.raises(IntegrityError), transaction.atomic():
        RetentionRule.objects.create(workflow=workflow, kind="cache", bucket="live", window=timedelta(hours=1))


# Two owners: one proposes, the other countersigns


def test_a_proposed_change_waits_and_is_not_in_effect(owner, security, prompt_rule):
    artifact = ArtifactFactory.create(rule=prompt_rule)

    change = retention_change_propose(rule=prompt_rule, user=owner, window=timedelta(days=1))

    assert change.status == RetentionChangeStatus.PENDING
    assert (change.window_before, change.window_after) == (timedelta(days=7), timedelta(days=1))
    assert change.proposed_by == owner and change.source == "page"
    assert _window(prompt_rule) == timedelta(days=7)
    artifact.refresh_from_db()
    assert artifact.expires_at == artifact.created_at + timedelta(days=7)
    proposed = AuditEvent.objects.get(action="retention.change_proposed")
    assert proposed.actor_label == "owner"
    assert proposed.field == "prompt/live"
    assert proposed.old_value == {"window": "7d", "owner": "owner"}
    assert proposed.new_value == {"window": "1d", "owner": "owner"}
    assert proposed.details["waits_for"] == "Sasha Iyer"
    assert not AuditEvent.objects.filter(action="retention.changed").exists()


def test_the_other_owner_countersigns_and_the_change_takes_effect_naming_both(owner, security, prompt_rule):
    now = timezone.now()
    old = ArtifactFactory.create(rule=prompt_rule, created_at=now - timedelta(days=3))
    new = ArtifactFactory.create(rule=prompt_rule, created_at=now)
    other_rule = RetentionRuleFactory(workflow=prompt_rule.workflow, kind="output", window=timedelta(days=7))
    untouched = ArtifactFactory.create(rule=other_rule, created_at=now)
    change = retention_change_propose(rule=prompt_rule, user=owner, window=timedelta(days=1))

    retention_change_countersign(change=change, user=security)

    assert _window(prompt_rule) == timedelta(days=1)
    for artifact, window in ((old, timedelta(days=1)), (new, timedelta(days=1)), (untouched, timedelta(days=7))):
        artifact.refresh_from_db()
        assert artifact.expires_at == artifact.created_at + window
    change.refresh_from_db()
    assert change.status == RetentionChangeStatus.APPLIED
    assert change.countersigned_by == security and change.countersigned_at is not None
    event = AuditEvent.objects.get(action="retention.changed")
    assert event.actor_label == "security"
    assert event.approver_label == "Sasha Iyer"
    assert event.workflow_slug == "duplicate-merge"
    assert event.old_value == {"window": "7d", "owner": "owner"}
    assert event.new_value == {"window": "1d", "owner": "owner"}
    assert event.details["proposed_by"] == "owner"
    assert event.details["countersigned_by"] == "security"
    assert event.details["artifacts_shortened"] == 2
    assert decider(event) == Decider("countersigned by", "Sasha Iyer")


def test_the_co_owner_may_propose_and_the_rules_owner_countersigns(owner, security, prompt_rule):
    change = retention_change_propose(rule=prompt_rule, user=security, window=timedelta(days=30))
    assert _window(prompt_rule) == timedelta(days=7)
    retention_change_countersign(change=change, user=owner)
    assert _window(prompt_rule) == timedelta(days=30)
    event = AuditEvent.objects.get(action="retention.changed")
    assert (event.details["proposed_by"], event.details["countersigned_by"]) == ("security", "owner")


def test_the_proposer_cannot_countersign_their_own_change(owner, prompt_rule):
    change = retention_change_propose(rule=prompt_rule, user=owner, window=timedelta(days=1))
    with pytest.raises(NotAllowed, match="you proposed this change: the other owner of the retention rules"):
        retention_change_countersign(change=change, user=owner)
    change.refresh_from_db()
    assert change.status == RetentionChangeStatus.PENDING
    assert _window(prompt_rule) == timedelta(days=7)
    assert not AuditEvent.objects.filter(action="retention.changed").exists()


def test_the_database_refuses_one_person_in_both_roles(owner, prompt_rule):
    change = retention_change_propose(rule=prompt_rule, user=owner, window=timedelta(days=1))
    with pytest.raises(IntegrityError), transaction.atomic():
        RetentionChange.objects.filter(pk=change.pk).update(countersigned_by=owner)


def test_someone_who_owns_no_rules_may_neither_propose_nor_countersign(owner, prompt_rule):
    lead = UserFactory(username="lead", is_superuser=True)
    message = r"only the owners of duplicate-merge's retention rules \(Morgan Hale and Sasha Iyer\) may"
    with pytest.raises(NotAllowed, match=message + " change them"):
        retention_change_propose(rule=prompt_rule, user=lead, window=timedelta(0))
    assert not RetentionChange.objects.exists()
    change = retention_change_propose(rule=prompt_rule, user=owner, window=timedelta(0))
    with pytest.raises(NotAllowed, match=message + " countersign a change to them"):
        retention_change_countersign(change=change, user=lead)
    with pytest.raises(NotAllowed, match=message + " reject a change to them"):
        retention_change_withdraw(change=change, user=lead)
    change.refresh_from_db()
    assert change.status == RetentionChangeStatus.PENDING
    assert _window(prompt_rule) == timedelta(days=7)


def test_the_workflow_owner_owns_nothing_when_another_rules_owner_is_named(owner, security, workflow):
    keeper = UserFactory(username="dpo")
    workflow.retention_owner = keeper
    workflow.save(update_fields=["retention_owner"])
    rule = RetentionRuleFactory(workflow=workflow, kind="cache", owner=keeper)
    with pytest.raises(NotAllowed):
        retention_change_propose(rule=rule, user=owner, window=timedelta(hours=1))
    change = retention_change_propose(rule=rule, user=keeper, window=timedelta(hours=1))
    retention_change_countersign(change=change, user=security)
    assert _window(rule) == timedelta(hours=1)
    assert AuditEvent.objects.get(action="retention.change_proposed").actor_label == "dpo"


def test_a_second_proposal_for_a_rule_is_refused_while_one_waits(owner, security, prompt_rule):
    retention_change_propose(rule=prompt_rule, user=owner, window=timedelta(days=1))
    with pytest.raises(InvalidTransition, match="already waiting for its second owner: countersign, reject"):
        retention_change_propose(rule=prompt_rule, user=security, window=timedelta(days=2))
    assert RetentionChange.objects.get().window_after == timedelta(days=1)


def test_a_change_is_decided_once(owner, security, prompt_rule):
    change = retention_change_propose(rule=prompt_rule, user=owner, window=timedelta(days=1))
    retention_change_countersign(change=change, user=security)
    with pytest.raises(InvalidTransition, match="already countersigned and applied"):
        retention_change_countersign(change=change, user=security)
    with pytest.raises(InvalidTransition, match="already countersigned and applied"):
        retention_change_withdraw(change=change, user=owner)
    assert AuditEvent.objects.filter(action="retention.changed").count() == 1


def test_the_proposer_withdraws_and_the_other_owner_rejects(owner, security, prompt_rule):
    withdrawn = retention_change_propose(rule=prompt_rule, user=owner, window=timedelta(days=1))
    retention_change_withdraw(change=withdrawn, user=owner)
    rejected = retention_change_propose(rule=prompt_rule, user=owner, window=timedelta(days=2))
    retention_change_withdraw(change=rejected, user=security)

    assert _window(prompt_rule) == timedelta(days=7)
    assert set(RetentionChange.objects.values_list("status", flat=True)) == {RetentionChangeStatus.WITHDRAWN}
    assert AuditEvent.objects.get(action="retention.change_withdrawn").actor_label == "owner"
    rejection = AuditEvent.objects.get(action="retention.change_rejected")
    assert rejection.actor_label == "security"
    assert decider(rejection) == Decider("rejected by", "Sasha Iyer")
    assert rejection.details["proposed_window"] == "2d"
    assert not AuditEvent.objects.filter(action="retention.changed").exists()


def test_without_a_second_owner_a_change_waits_until_one_is_named(owner, security, prompt_rule):
    workflow = prompt_rule.workflow
    workflow.retention_co_owner = None
    workflow.save(update_fields=["retention_co_owner"])
    change = retention_change_propose(rule=prompt_rule, user=owner, window=timedelta(days=1))
    assert (
        AuditEvent.objects.get(action="retention.change_proposed")
        .details["waits_for"]
        .startswith("a second owner to be named")
    )
    with pytest.raises(NotAllowed, match="names no second owner of its retention rules, so no change can take effect"):
        retention_change_countersign(change=change, user=security)
    assert _window(prompt_rule) == timedelta(days=7)

    workflow.retention_co_owner = security
    workflow.save(update_fields=["retention_co_owner"])
    retention_change_countersign(change=change, user=security)
    assert _window(prompt_rule) == timedelta(days=1)


def test_a_change_whose_proposer_no_longer_owns_the_rules_can_only_be_withdrawn(owner, security, prompt_rule):
    change = retention_change_propose(rule=prompt_rule, user=owner, window=timedelta(days=1))
    workflow = prompt_rule.workflow
    workflow.retention_owner = UserFactory(username="dpo")
    workflow.save(update_fields=["retention_owner"])
    with pytest.raises(NotAllowed, match="Morgan Hale, who proposed this change, no longer owns duplicate-merge's"):
        retention_change_countersign(change=change, user=security)
    assert _window(prompt_rule) == timedelta(days=7)
    retention_change_withdraw(change=change, user=owner)
    change.refresh_from_db()
    assert change.status == RetentionChangeStatus.WITHDRAWN


@pytest.mark.parametrize(
    ("window", "message"),
    [
        (timedelta(seconds=-1), "must not be negative"),
        (timedelta(days=4000), "at most 3650d"),
        (timedelta(days=7), "the rule already keeps artifacts for 7d"),
    ],
)
def test_a_bad_window_is_refused_naming_the_field(owner, prompt_rule, window, message):
    with pytest.raises(ValidationFailed, match=message) as refused:
        retention_change_propose(rule=prompt_rule, user=owner, window=window)
    assert refused.value.field == "window"
    assert not RetentionChange.objects.exists()


def test_a_longer_rule_never_lengthens_what_is_already_stored(owner, security, prompt_rule):
    artifact = ArtifactFactory.create(rule=prompt_rule)
    change = retention_change_propose(rule=prompt_rule, user=owner, window=timedelta(days=90))
    retention_change_countersign(change=change, user=security)
    artifact.refresh_from_db()
    assert artifact.expires_at == artifact.created_at + timedelta(days=7)
    event = AuditEvent.objects.get(action="retention.changed")
    assert event.details["existing_artifacts"] == "keep their expiry"


def test_a_zero_window_sends_what_is_stored_to_the_next_purge(owner, security, prompt_rule):
    artifact = ArtifactFactory.create(rule=prompt_rule)
    change = retention_change_propose(rule=prompt_rule, user=owner, window=timedelta(0))
    retention_change_countersign(change=change, user=security)
    artifact.refresh_from_db()
    assert artifact.expires_at == artifact.created_at <= timezone.now()


# Training copies


@pytest.fixture
def output_rule(workflow):
    return RetentionRuleFactory(workflow=workflow, kind="output", bucket="live", window=timedelta(days=7))


@pytest.fixture
def training_rule(workflow):
    return RetentionRuleFactory(workflow=workflow, kind="output", bucket="training", window=timedelta(days=30))


@pytest.fixture
def lead(workflow):
    user = UserFactory(username="lead")
    assign_perm("view_workflow", user, workflow)
    return user


def test_a_training_copy_is_refused_without_an_approved_request(output_rule, training_rule, owner, lead):
    artifact = ArtifactFactory.create(rule=output_rule)
    with pytest.raises(NotAllowed, match="needs a request that the workflow owner approved"):
        artifact_copy_to_training(artifact=artifact, request=None)
    pending = training_copy_request(artifact=artifact, user=lead)
    with pytest.raises(NotAllowed):
        artifact_copy_to_training(artifact=artifact, request=pending)
    rejected = training_copy_decide(request=pending, owner=owner, approve=False, note="customer data, no")
    with pytest.raises(NotAllowed):
        artifact_copy_to_training(artifact=artifact, request=rejected)
    assert not Artifact.objects.filter(bucket="training").exists()


def test_an_approved_request_makes_one_copy_that_expires_by_the_training_rule(output_rule, training_rule, owner, lead):
    artifact = ArtifactFactory.create(rule=output_rule)
    request = training_copy_request(artifact=artifact, user=lead, reason="good example of a merge refusal")
    decided = training_copy_decide(request=request, owner=owner, approve=True)

    assert decided.status == TrainingCopyStatus.APPROVED
    copy = Artifact.objects.get(bucket="training")
    assert decided.copy_id == copy.id
    assert copy.copied_from == artifact.id
    assert copy.rule_id == training_rule.pk
    assert copy.sha256 == artifact.sha256
    assert copy.content == artifact.content
    assert copy.expires_at == copy.created_at + timedelta(days=30)
    with pytest.raises(NotAllowed):
        artifact_copy_to_training(artifact=artifact, request=decided)
    assert Artifact.objects.filter(bucket="training").count() == 1

    asked = AuditEvent.objects.get(action="artifact.training_requested")
    assert asked.actor_label == "lead"
    assert asked.reason == "good example of a merge refusal"
    assert asked.details["artifact_id"] == str(artifact.id)
    answered = AuditEvent.objects.get(action="artifact.training_decided")
    assert answered.actor_label == "owner"
    assert answered.approver_label == owner.get_full_name()  # named as a decision names its approver
    assert answered.details["approved"] is True
    assert answered.details["copy_id"] == str(copy.id)


def test_a_file_artifact_is_copied_through_storage(output_rule, training_rule, owner, lead, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    body = b"%PDF-1.7 merge evidence"
    artifact = ArtifactFactory.create(rule=output_rule, content="", size=len(body))
    artifact.sha256 = hashlib.sha256(body).hexdigest()
    artifact.file.save("evidence.pdf", ContentFile(body), save=True)
    request = training_copy_request(artifact=artifact, user=lead)
    training_copy_decide(request=request, owner=owner, approve=True)
    copy = Artifact.objects.get(bucket="training")
    assert copy.file.name != artifact.file.name
    with copy.file.open("rb") as stored:
        assert stored.read() == body


def test_only_the_workflow_owner_decides_and_never_their_own_request(output_rule, training_rule, owner, lead):
    artifact = ArtifactFactory.create(rule=output_rule)
    request = training_copy_request(artifact=artifact, user=lead)
    with pytest.raises(NotAllowed, match="only the workflow's owner, Morgan Hale"):
        training_copy_decide(request=request, owner=lead, approve=True)
    own = training_copy_request(artifact=ArtifactFactory.create(rule=output_rule), user=owner)
    with pytest.raises(NotAllowed, match="cannot approve it"):
        training_copy_decide(request=own, owner=owner, approve=True)
    assert TrainingCopyRequest.objects.filter(status=TrainingCopyStatus.PENDING).count() == 2
    assert not AuditEvent.objects.filter(action="artifact.training_decided").exists()


def test_a_request_is_decided_once_and_a_refusal_needs_a_reason(output_rule, training_rule, owner, lead):
    request = training_copy_request(artifact=ArtifactFactory.create(rule=output_rule), user=lead)
    with pytest.raises(ValidationFailed) as refused:
        training_copy_decide(request=request, owner=owner, approve=False)
    assert refused.value.field == "note"
    training_copy_decide(request=request, owner=owner, approve=False, note="holds a customer's words")
    refused_event = AuditEvent.objects.get(action="artifact.training_decided")
    assert refused_event.approver_label == ""  # a refusal is no approval, in the trail or its exports
    assert refused_event.details["refused_by"] == owner.get_full_name()
    with pytest.raises(InvalidTransition, match="already decided"):
        training_copy_decide(request=request, owner=owner, approve=True)


def test_a_zero_training_rule_means_no_copy_may_be_kept(workflow, output_rule, lead):
    RetentionRuleFactory(workflow=workflow, kind="output", bucket="training", window=timedelta(0))
    with pytest.raises(ValidationFailed, match="is 0 .never store.: no copy may be kept") as refused:
        training_copy_request(artifact=ArtifactFactory.create(rule=output_rule), user=lead)
    assert refused.value.field == "bucket"
    assert not TrainingCopyRequest.objects.exists()


def test_no_training_rule_means_no_copy(prompt_rule, lead):
    with pytest.raises(ValidationFailed, match="has no training rule for prompt"):
        training_copy_request(artifact=ArtifactFactory.create(rule=prompt_rule), user=lead)
    assert not TrainingCopyRequest.objects.exists()
    assert not Artifact.objects.filter(bucket="training").exists()


def test_a_flagged_artifact_is_never_copied_for_training(output_rule, training_rule, lead):
    artifact = ArtifactFactory.create(rule=output_rule, flagged_fields=["customer.email"])
    with pytest.raises(ValidationFailed, match=r"may not read \(customer.email\)"):
        training_copy_request(artifact=artifact, user=lead)
    assert not TrainingCopyRequest.objects.exists()
    assert not Artifact.objects.filter(bucket="training").exists()


def test_someone_who_cannot_see_the_workflow_cannot_ask(output_rule, training_rule):
    stranger = UserFactory(username="stranger")
    with pytest.raises(NotAllowed):
        training_copy_request(artifact=ArtifactFactory.create(rule=output_rule), user=stranger)
    assert not TrainingCopyRequest.objects.exists()


def test_one_request_and_one_copy_per_artifact(output_rule, training_rule, owner, lead):
    artifact = ArtifactFactory.create(rule=output_rule)
    request = training_copy_request(artifact=artifact, user=lead)
    with pytest.raises(InvalidTransition, match="already waiting"):
        training_copy_request(artifact=artifact, user=lead)
    training_copy_decide(request=request, owner=owner, approve=True)
    with pytest.raises(InvalidTransition, match="already has a training copy"):
        training_copy_request(artifact=artifact, user=lead)
    assert TrainingCopyRequest.objects.filter(artifact_id=artifact.pk).count() == 1
    assert Artifact.objects.filter(bucket="training", copied_from=artifact.pk).count() == 1


def test_an_expired_artifact_cannot_be_asked_for(output_rule, training_rule, lead):
    past = timezone.now() - timedelta(days=8)
    artifact = ArtifactFactory.create(rule=output_rule, created_at=past)
    with pytest.raises(NotFound, match="expired or was purged"):
        training_copy_request(artifact=artifact, user=lead)
    assert not TrainingCopyRequest.objects.exists()
