"""Retention rules and training copies: who may change how long AI artifacts are kept, and what may be
kept for training. The safest default wins: keep less, for less time."""

import hashlib
import uuid
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals.models import RetentionChange, RetentionRule, TrainingCopyRequest, TrainingCopyStatus, Workflow
from approvals.retention.selectors import retention_rule_for
from approvals.workflows.retention_rules import (
    retention_change_carry_out,
    retention_change_close,
    retention_change_open,
)
from approvals.workflows.rights import retention_withdraw_refusal, workflow_visible_to
from audit.models import Artifact, Bucket
from audit.services import Actor, EventData, audit_record, audit_record_many, user_label
from core.errors import InvalidTransition, NotAllowed, NotFound, ValidationFailed
from core.timeutils import format_window

MAX_WINDOW = timedelta(days=3650)


def _checked_window(window: timedelta) -> None:
    if window < timedelta(0):
        raise ValidationFailed([("window", "must not be negative; 0 means never store")])
    if window > MAX_WINDOW:
        raise ValidationFailed([("window", f"must be at most {format_window(MAX_WINDOW)}")])


def _locked_workflow(workflow_id: int) -> Workflow:
    return (
        Workflow.objects.select_for_update(of=("self",))
        .select_related("owner", "retention_owner", "retention_co_owner")
        .get(pk=workflow_id)
    )


def retention_change_propose(*, rule: RetentionRule, user: Any, window: timedelta) -> RetentionChange:
    """One owner of the retention rules proposes that `rule` keep artifacts for `window`. Nothing
    changes until the other owner countersigns; one change per rule waits at a time."""
    _checked_window(window)
    with transaction.atomic():
        workflow = _locked_workflow(rule.workflow_id)
        locked = (
            RetentionRule.objects.select_for_update(of=("self",)).select_related("owner").filter(pk=rule.pk).first()
        )
        if locked is None:
            raise NotFound("this retention rule no longer exists")
        change, event = retention_change_open(
            workflow=workflow,
            kind=locked.kind,
            bucket=locked.bucket,
            rule=locked,
            window=window,
            proposed_by=user,
            source="page",
            actor=Actor.user(user),
        )
        audit_record_many([event])
    return change


def _locked_change(change: RetentionChange) -> tuple[RetentionChange, RetentionRule | None]:
    """The change, its workflow and the rule it is about, locked in that order."""
    workflow = _locked_workflow(change.workflow_id)
    locked = RetentionChange.objects.select_for_update(of=("self",)).select_related("proposed_by").get(pk=change.pk)
    locked.workflow = workflow
    rule = (
        RetentionRule.objects.select_for_update(of=("self",))
        .select_related("owner")
        .filter(workflow=workflow, kind=locked.kind, bucket=locked.bucket)
        .first()
    )
    return locked, rule


def retention_change_countersign(*, change: RetentionChange, user: Any) -> RetentionChange:
    """The other owner countersigns a waiting change, and it takes effect exactly as proposed: a
    shorter window shortens what is already stored, and the trail names both people."""
    with transaction.atomic():
        locked, rule = _locked_change(change)
        event = retention_change_carry_out(change=locked, rule=rule, countersigned_by=user, actor=Actor.user(user))
        audit_record_many([event])
    return locked


def retention_change_withdraw(*, change: RetentionChange, user: Any) -> RetentionChange:
    """Its proposer withdraws a waiting change, or the other owner rejects it. The rule stays as it is."""
    with transaction.atomic():
        locked, _rule = _locked_change(change)
        workflow = locked.workflow
        refusal = retention_withdraw_refusal(user=user, workflow=workflow, proposed_by=locked.proposed_by)
        if refusal:
            raise NotAllowed(refusal)
        rejected_by = None if user.pk == locked.proposed_by_id else user
        event = retention_change_close(change=locked, actor=Actor.user(user), rejected_by=rejected_by)
        audit_record_many([event])
    return locked


def _training_rule(workflow: Workflow, kind: str) -> RetentionRule:
    rule = retention_rule_for(workflow=workflow, kind=kind, bucket=Bucket.TRAINING)
    if rule is None:
        raise ValidationFailed(
            [("bucket", f"{workflow.slug} has no training rule for {kind}, so no training copy may be stored")]
        )
    if rule.window <= timedelta(0):
        raise ValidationFailed(
            [("bucket", f"the training rule for {kind} in {workflow.slug} is 0 (never store): no copy may be kept")]
        )
    return rule


def _artifact_event(action: str, artifact: Artifact, actor: Actor, **extra: Any) -> EventData:
    return EventData(
        action=action,
        actor=actor,
        proposal_id=artifact.proposal_id,
        workflow_slug=artifact.workflow_slug,
        details={
            "artifact_id": str(artifact.pk),
            "kind": artifact.kind,
            "bucket": artifact.bucket,
            "sha256": artifact.sha256,
            "size": artifact.size,
            "rule_id": artifact.rule_id,
            **extra,
        },
    )


def training_copy_request(*, artifact: Artifact, user: Any, reason: str = "") -> TrainingCopyRequest:
    """Ask the workflow owner to let one artifact be copied into the training bucket."""
    with transaction.atomic():
        current = Artifact.objects.filter(pk=artifact.pk, expires_at__gt=timezone.now()).first()
        if current is None:
            raise NotFound("the artifact has expired or was purged; nothing is left to copy")
        workflow = Workflow.objects.select_related("owner").get(pk=current.workflow_id)
        if not workflow_visible_to(user=user, workflow=workflow):
            raise NotAllowed(f"you may not see the workflow {workflow.slug}")
        if current.bucket == Bucket.TRAINING:
            raise ValidationFailed([("bucket", "this artifact is already a training copy")])
        if current.flagged_fields:
            raise ValidationFailed(
                [
                    (
                        "artifact",
                        "it holds values of fields the workflow may not read "
                        f"({', '.join(current.flagged_fields)}); it cannot be kept for training",
                    )
                ]
            )
        _training_rule(workflow, current.kind)
        earlier = (
            TrainingCopyRequest.objects.filter(
                artifact_id=current.pk, status__in=[TrainingCopyStatus.PENDING, TrainingCopyStatus.APPROVED]
            )
            .values_list("status", flat=True)
            .first()
        )
        if earlier == TrainingCopyStatus.PENDING:
            raise InvalidTransition("a request to copy this artifact is already waiting for the workflow owner")
        if earlier == TrainingCopyStatus.APPROVED:
            raise InvalidTransition("this artifact already has a training copy")
        try:
            with transaction.atomic():
                request = TrainingCopyRequest.objects.create(
                    workflow=workflow,
                    artifact_id=current.pk,
                    artifact_kind=current.kind,
                    artifact_sha256=current.sha256,
                    reason=reason.strip(),
                    requested_by=user,
                )
        except IntegrityError:
            # Someone asked for the same artifact a moment ago.
            raise InvalidTransition(
                "a request to copy this artifact is already waiting for the workflow owner"
            ) from None
        event = _artifact_event("artifact.training_requested", current, Actor.user(user), request_id=request.pk)
        event.reason = request.reason
        audit_record_many([event])
    return request


def artifact_copy_to_training(*, artifact: Artifact, request: TrainingCopyRequest | None) -> Artifact:
    """Copy `artifact` into the training bucket under an approved `request`. Anything else is refused."""
    if (
        request is None
        or request.status != TrainingCopyStatus.APPROVED
        or request.artifact_id != artifact.pk
        or request.copy_id is not None
    ):
        raise NotAllowed("copying into the training bucket needs a request that the workflow owner approved")
    workflow = Workflow.objects.get(pk=artifact.workflow_id)
    rule = _training_rule(workflow, artifact.kind)
    now = timezone.now()
    copy_id = uuid.uuid4()
    stored_name = ""
    if artifact.file:
        digest = hashlib.sha256()
        with artifact.file.open("rb") as source:
            for chunk in source.chunks():
                digest.update(chunk)
            if digest.hexdigest() != artifact.sha256:
                raise InvalidTransition("the stored file no longer matches the artifact's sha256; nothing was copied")
            suffix = PurePosixPath(artifact.file.name or "").suffix
            stored_name = artifact.file.storage.save(f"artifacts/training/{copy_id}{suffix}", source)
    try:
        copy = Artifact.objects.create(
            id=copy_id,
            workflow_id=artifact.workflow_id,
            workflow_slug=artifact.workflow_slug,
            proposal_id=artifact.proposal_id,
            rule_id=rule.pk,
            kind=artifact.kind,
            bucket=Bucket.TRAINING,
            name=artifact.name,
            content=artifact.content,
            file=stored_name,
            sha256=artifact.sha256,
            size=artifact.size,
            created_at=now,
            expires_at=now + rule.window,
            copied_from=artifact.pk,
        )
    except Exception:
        if stored_name:
            artifact.file.storage.delete(stored_name)
        raise
    audit_record_many(
        [
            _artifact_event(
                "artifact.stored",
                copy,
                Actor.system("training copy"),
                expires_at=copy.expires_at,
                copied_from=str(artifact.pk),
                request_id=request.pk,
            )
        ]
    )
    return copy


def training_copy_decide(
    *, request: TrainingCopyRequest, owner: Any, approve: bool, note: str = ""
) -> TrainingCopyRequest:
    """The workflow owner approves (and the copy is made) or rejects (with a reason) a training copy."""
    with transaction.atomic():
        locked = (
            TrainingCopyRequest.objects.select_for_update(of=("self",))
            .select_related("workflow__owner")
            .get(pk=request.pk)
        )
        workflow = locked.workflow
        if owner.pk != workflow.owner_id:
            raise NotAllowed(f"only the workflow's owner, {user_label(workflow.owner)}, decides training copies")
        if owner.pk == locked.requested_by_id:
            raise NotAllowed("the person who asked for a training copy cannot approve it")
        if locked.status != TrainingCopyStatus.PENDING:
            raise InvalidTransition(f"this request was already decided ({locked.get_status_display().lower()})")
        note = note.strip()
        if not approve and not note:
            raise ValidationFailed([("note", "say why the copy is refused")])
        artifact = (
            Artifact.objects.select_for_update().filter(pk=locked.artifact_id, expires_at__gt=timezone.now()).first()
        )
        if approve and artifact is None:
            raise InvalidTransition("the artifact expired and was purged before the decision; reject the request")
        now = timezone.now()
        locked.status = TrainingCopyStatus.APPROVED if approve else TrainingCopyStatus.REJECTED
        locked.decided_by = owner
        locked.decided_at = now
        locked.decision_note = note
        copy = None
        if approve and artifact is not None:
            copy = artifact_copy_to_training(artifact=artifact, request=locked)
            locked.copy_id = copy.pk
        locked.save(update_fields=["status", "decided_by", "decided_at", "decision_note", "copy_id"])
        audit_record(
            action="artifact.training_decided",
            actor=Actor.user(owner),
            workflow_slug=workflow.slug,
            approver_label=user_label(owner) if approve else "",
            decided_at=now,
            reason=note,
            details={
                **({} if approve else {"refused_by": user_label(owner)}),
                "request_id": locked.pk,
                "artifact_id": str(locked.artifact_id),
                "kind": locked.artifact_kind,
                "approved": approve,
                "copy_id": str(copy.pk) if copy else None,
                "copy_expires_at": copy.expires_at if copy else None,
            },
        )
    return locked
