"""Storing artifacts. The caller names the retention rule that governs one; the expiry always comes from it."""

import hashlib
from datetime import timedelta

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from audit.models import Artifact, ArtifactKind, Bucket
from audit.services import Actor, audit_record
from core.errors import ValidationFailed

MAX_NAME_LENGTH = 200


def artifact_store(
    *,
    workflow_id: int,
    workflow_slug: str,
    proposal_id: int | None,
    rule_id: int,
    window: timedelta,
    kind: str,
    bucket: str,
    content: str | bytes,
    name: str = "",
    actor: Actor | None = None,
) -> Artifact:
    """Keep `content` until now + `window`, the window of retention rule `rule_id`.

    Text is kept in the database, bytes through Django's storage API. A window of zero means the
    rule says "never store": the artifact is refused, naming the rule.
    """
    rule_label = f"{workflow_slug} {kind}/{bucket}"
    problems: list[tuple[str, str]] = []
    if kind not in ArtifactKind.values:
        problems.append(("kind", f"'{kind[:40]}' is not one of {', '.join(ArtifactKind.values)}"))
    if bucket not in Bucket.values:
        problems.append(("bucket", f"'{bucket[:40]}' is not one of {', '.join(Bucket.values)}"))
    if len(name) > MAX_NAME_LENGTH or "\x00" in name:
        problems.append(("name", f"must be at most {MAX_NAME_LENGTH} characters, without NUL"))
    if isinstance(content, str) and "\x00" in content:
        problems.append(("content", "must not contain NUL characters; send binary content as an attachment"))
    if problems:
        raise ValidationFailed(problems)
    if window <= timedelta(0):
        raise ValidationFailed(
            [("bucket", f"retention rule {rule_label} has a window of 0: this artifact is never stored")],
            extra={"rule": rule_label, "rule_id": rule_id},
        )
    raw = content.encode() if isinstance(content, str) else content
    now = timezone.now()
    artifact = Artifact(
        workflow_id=workflow_id,
        workflow_slug=workflow_slug,
        proposal_id=proposal_id,
        rule_id=rule_id,
        kind=kind,
        bucket=bucket,
        name=name,
        sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        created_at=now,
        expires_at=now + window,
    )
    if isinstance(content, str):
        artifact.content = content
    else:
        artifact.file.save(f"{artifact.id}.bin", ContentFile(raw), save=False)
    try:
        with transaction.atomic():
            artifact.save(force_insert=True)
            audit_record(
                action="artifact.stored",
                actor=actor or Actor.system("artifacts"),
                proposal_id=proposal_id,
                workflow_slug=workflow_slug,
                details={
                    "artifact_id": str(artifact.id),
                    "kind": kind,
                    "bucket": bucket,
                    "name": name,
                    "sha256": artifact.sha256,
                    "size": artifact.size,
                    "rule_id": rule_id,
                    "rule": rule_label,
                    "expires_at": artifact.expires_at.isoformat(),
                },
            )
    except BaseException:
        if artifact.file:
            artifact.file.delete(save=False)
        raise
    return artifact
