"""A pipeline's artifacts: prompts, outputs, attachments, cache entries and error logs, kept by rule."""

from django.db import transaction

from approvals.intake.lint import artifact_lint
from approvals.models import Proposal, RetentionRule, ServiceAccount, Stage
from audit.artifacts import artifact_store
from audit.models import Artifact, ArtifactKind, Bucket
from audit.services import Actor
from core.errors import Locked, NotAllowed, NotFound, ValidationFailed


def artifact_attach(
    *,
    account: ServiceAccount,
    kind: str,
    bucket: str,
    content: str | bytes,
    name: str = "",
    proposal_id: int | None = None,
) -> Artifact:
    """Store an artifact for the account's workflow, optionally attached to one of its proposals.

    The expiry comes from the workflow's retention rule for this kind and bucket. Without such a
    rule nothing is stored: keeping things "until we decide" is how everything ends up kept.
    The training bucket is refused here: a training copy needs its own approval.
    """
    workflow = account.workflow
    if workflow.stage in (Stage.PAUSED, Stage.DRAFT):
        raise Locked(f"workflow {workflow.slug} is {workflow.stage}: it stores no artifacts")
    if proposal_id is not None and not Proposal.objects.filter(pk=proposal_id, workflow=workflow).exists():
        raise NotFound(f"no proposal {proposal_id} for workflow {workflow.slug}", field="proposal_id")
    problems = []
    if kind not in ArtifactKind.values:
        problems.append(("kind", f"'{kind[:40]}' is not one of {', '.join(ArtifactKind.values)}"))
    if bucket not in Bucket.values:
        problems.append(("bucket", f"'{bucket[:40]}' is not one of {', '.join(Bucket.values)}"))
    if problems:
        raise ValidationFailed(problems)
    if bucket == Bucket.TRAINING:
        raise NotAllowed(
            "a training copy needs its own approval: store the artifact in the live bucket, then request a "
            "training copy",
            field="bucket",
        )
    rule = RetentionRule.objects.filter(workflow=workflow, kind=kind, bucket=bucket).first()
    if rule is None:
        raise ValidationFailed(
            [
                (
                    "bucket",
                    f"workflow {workflow.slug} has no retention rule {kind}/{bucket}: "
                    "an artifact without a rule is never stored",
                )
            ],
            extra={"missing_rule": f"{kind}/{bucket}"},
        )
    with transaction.atomic():
        artifact = artifact_store(
            workflow_id=workflow.pk,
            workflow_slug=workflow.slug,
            proposal_id=proposal_id,
            rule_id=rule.pk,
            window=rule.window,
            kind=kind,
            bucket=bucket,
            content=content,
            name=name,
            actor=Actor.service_account(account),
        )
        # The minimisation lint: a prompt or output holding a value the workflow may not read is flagged.
        artifact_lint(artifact=artifact)
    return artifact
